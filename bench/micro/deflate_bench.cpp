// Micro-benchmarks of permessage-deflate: compressing (Deflater) and
// inflating (Inflater) 20-byte, 1 KiB JSON-like and 16 KiB text messages.
// Bytes/s counts uncompressed message bytes in both directions; the
// "ratio" counter is compressed / uncompressed size.
//
// Each benchmark cycles through 64 different messages of a kind, so that
// with context takeover the window helps as it does on a real connection
// (similar, not identical, messages) rather than turning every message
// into one back-reference. Inflating with context takeover must follow the
// order the messages were compressed in: the stream of 64 is replayed from
// a fresh Inflater each lap, and that restart is part of the time.
//
//   NoTakeover  server_no_context_takeover: a reset per message, as a
//               shared broadcast Deflater runs
//   Level1      zlib level 1 instead of the default 6
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "proto/deflate.hpp"

namespace {

using windlass::proto::DeflateError;
using windlass::proto::Deflater;
using windlass::proto::DeflaterConfig;
using windlass::proto::InflateError;
using windlass::proto::Inflater;
using windlass::proto::InflaterConfig;

constexpr size_t kVariants = 64;

const char* const kWords[] = {"the",      "server", "message", "channel", "presence", "update", "user",
                              "windlass", "socket", "event",   "online",  "reply",    "hello",  "world",
                              "deflate",  "window", "context", "frame",   "payload",  "latency"};

std::string word(std::mt19937& rng) {
  return kWords[rng() % (sizeof kWords / sizeof kWords[0])];
}

// {"n":123456,"ok":true}-like, 20 bytes.
std::string tiny(std::mt19937& rng) {
  std::string s = "{\"n\":" + std::to_string(100000 + rng() % 900000) + ",\"ok\":1}";
  s.resize(20, ' ');
  return s;
}

// A chat event in JSON, padded out to 1 KiB with more items.
std::string json_1k(std::mt19937& rng) {
  std::string s =
      "{\"event\":\"message\",\"channel\":\"room-" + std::to_string(rng() % 100) + "\",\"items\":[";
  while (s.size() < 1000) {
    s += "{\"id\":" + std::to_string(rng() % 1000000) + ",\"user\":\"" + word(rng) +
         std::to_string(rng() % 100) + "\",\"text\":\"" + word(rng) + " " + word(rng) + " " + word(rng) +
         "\",\"ts\":" + std::to_string(1700000000 + rng() % 100000) + "},";
  }
  s.resize(1022);
  s += "]}";
  return s;
}

// Prose-like text of 16 KiB.
std::string text_16k(std::mt19937& rng) {
  std::string s;
  while (s.size() < (16u << 10)) s += word(rng) + (rng() % 12 == 0 ? ".\n" : " ");
  s.resize(16u << 10);
  return s;
}

std::vector<std::string> variants(std::string (*make)(std::mt19937&)) {
  std::mt19937 rng(42);
  std::vector<std::string> v;
  for (size_t i = 0; i < kVariants; ++i) v.push_back(make(rng));
  return v;
}

DeflaterConfig deflater_config(bool no_context_takeover, int level) {
  DeflaterConfig c;
  c.no_context_takeover = no_context_takeover;
  c.level = level;
  return c;
}

void compress(benchmark::State& state, std::string (*make)(std::mt19937&), bool no_context_takeover,
              int level = 6) {
  const std::vector<std::string> messages = variants(make);
  Deflater deflater(deflater_config(no_context_takeover, level));
  std::string out;
  size_t i = 0, in_bytes = 0, out_bytes = 0;
  for (auto _ : state) {
    const std::string& m = messages[i++ % kVariants];
    out.clear();
    if (deflater.compress(m, out) != DeflateError::none) {
      state.SkipWithError("compress failed");
      return;
    }
    benchmark::DoNotOptimize(out.data());
    in_bytes += m.size();
    out_bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(in_bytes));
  state.counters["ratio"] = in_bytes ? static_cast<double>(out_bytes) / static_cast<double>(in_bytes) : 0;
}

void inflate(benchmark::State& state, std::string (*make)(std::mt19937&), bool no_context_takeover) {
  const std::vector<std::string> messages = variants(make);
  Deflater deflater(deflater_config(no_context_takeover, 6));
  std::vector<std::string> payloads;
  for (const std::string& m : messages) {
    std::string out;
    deflater.compress(m, out);
    payloads.push_back(std::move(out));
  }
  InflaterConfig config;
  config.no_context_takeover = no_context_takeover;
  auto inflater = std::make_unique<Inflater>(config);
  std::string out;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    if (i == kVariants) {
      i = 0;
      inflater = std::make_unique<Inflater>(config);
    }
    out.clear();
    if (inflater->inflate_message(payloads[i], out) != InflateError::none ||
        out.size() != messages[i].size()) {
      state.SkipWithError("inflate failed");
      return;
    }
    benchmark::DoNotOptimize(out.data());
    bytes += out.size();
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_Compress20B(benchmark::State& s) {
  compress(s, tiny, false);
}
void BM_Compress20BNoTakeover(benchmark::State& s) {
  compress(s, tiny, true);
}
void BM_CompressJson1KiB(benchmark::State& s) {
  compress(s, json_1k, false);
}
void BM_CompressJson1KiBNoTakeover(benchmark::State& s) {
  compress(s, json_1k, true);
}
void BM_CompressJson1KiBLevel1(benchmark::State& s) {
  compress(s, json_1k, false, 1);
}
void BM_CompressText16KiB(benchmark::State& s) {
  compress(s, text_16k, false);
}
void BM_CompressText16KiBNoTakeover(benchmark::State& s) {
  compress(s, text_16k, true);
}
void BM_CompressText16KiBLevel1(benchmark::State& s) {
  compress(s, text_16k, false, 1);
}
BENCHMARK(BM_Compress20B);
BENCHMARK(BM_Compress20BNoTakeover);
BENCHMARK(BM_CompressJson1KiB);
BENCHMARK(BM_CompressJson1KiBNoTakeover);
BENCHMARK(BM_CompressJson1KiBLevel1);
BENCHMARK(BM_CompressText16KiB);
BENCHMARK(BM_CompressText16KiBNoTakeover);
BENCHMARK(BM_CompressText16KiBLevel1);

void BM_Inflate20B(benchmark::State& s) {
  inflate(s, tiny, false);
}
void BM_Inflate20BNoTakeover(benchmark::State& s) {
  inflate(s, tiny, true);
}
void BM_InflateJson1KiB(benchmark::State& s) {
  inflate(s, json_1k, false);
}
void BM_InflateJson1KiBNoTakeover(benchmark::State& s) {
  inflate(s, json_1k, true);
}
void BM_InflateText16KiB(benchmark::State& s) {
  inflate(s, text_16k, false);
}
void BM_InflateText16KiBNoTakeover(benchmark::State& s) {
  inflate(s, text_16k, true);
}
BENCHMARK(BM_Inflate20B);
BENCHMARK(BM_Inflate20BNoTakeover);
BENCHMARK(BM_InflateJson1KiB);
BENCHMARK(BM_InflateJson1KiBNoTakeover);
BENCHMARK(BM_InflateText16KiB);
BENCHMARK(BM_InflateText16KiBNoTakeover);

}  // namespace
