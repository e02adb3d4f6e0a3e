// Micro-benchmarks of the frame decoder's hot path: many small masked
// frames (per-frame overhead), large masked frames (unmasking and UTF-8
// throughput) and unmasking alone. Bytes/s counts whole frames, headers
// included.
//
// The decoder unmasks in place, so each iteration decodes a buffer that
// the previous one already unmasked. The text payloads are ASCII and the
// masking key has no high bits, so the bytes stay ASCII either way and every
// iteration decodes valid text of the same length.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "proto/ws_frame.hpp"
#include "proto/ws_frame_decoder.hpp"

namespace {

using windlass::proto::Opcode;

constexpr uint8_t kKey[4] = {0x12, 0x34, 0x56, 0x78};

struct CountingSink {
  size_t bytes = 0;
  size_t messages = 0;
  bool on_data(Opcode, bool, uint8_t* chunk, size_t len, bool, bool last) {
    benchmark::DoNotOptimize(chunk);
    bytes += len;
    messages += last ? 1 : 0;
    return true;
  }
  bool on_ping(const uint8_t*, size_t) { return true; }
  bool on_pong(const uint8_t*, size_t) { return true; }
  bool on_close(uint16_t, const char*, size_t) { return true; }
  void on_error(windlass::proto::FrameError) {}
};

std::vector<uint8_t> masked_frames(Opcode op, size_t payload, size_t count) {
  std::vector<uint8_t> out;
  for (size_t f = 0; f < count; ++f) {
    uint8_t header[windlass::proto::kMaxFrameHeader];
    const size_t h = windlass::proto::encode_frame_header(header, op, payload, true, false, kKey);
    out.insert(out.end(), header, header + h);
    const size_t at = out.size();
    for (size_t i = 0; i < payload; ++i) out.push_back(static_cast<uint8_t>('a' + (i + f) % 26));
    windlass::proto::apply_mask(out.data() + at, payload, kKey);
  }
  return out;
}

// Decodes `count` frames of `payload` bytes, fed in pieces of at most
// `piece` bytes (0: the whole buffer in one feed).
void decode_frames(benchmark::State& state, Opcode op, size_t payload, size_t count, size_t piece = 0) {
  std::vector<uint8_t> buf = masked_frames(op, payload, count);
  CountingSink sink;
  for (auto _ : state) {
    windlass::proto::FrameDecoder decoder;
    size_t at = 0;
    while (at < buf.size()) {
      const size_t n = piece == 0 || buf.size() - at < piece ? buf.size() - at : piece;
      const auto r = decoder.feed(buf.data() + at, n, sink);
      if (r.error != windlass::proto::FrameError::none) {
        state.SkipWithError("decode failed");
        return;
      }
      at += n;
    }
  }
  benchmark::DoNotOptimize(sink.bytes);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(count));
}

void BM_DecodeMaskedText20B(benchmark::State& state) {
  decode_frames(state, Opcode::text, 20, 1024);
}
BENCHMARK(BM_DecodeMaskedText20B);

void BM_DecodeMaskedBinary20B(benchmark::State& state) {
  decode_frames(state, Opcode::binary, 20, 1024);
}
BENCHMARK(BM_DecodeMaskedBinary20B);

void BM_DecodeMaskedText16KiB(benchmark::State& state) {
  decode_frames(state, Opcode::text, 16 << 10, 4);
}
BENCHMARK(BM_DecodeMaskedText16KiB);

void BM_DecodeMaskedBinary16KiB(benchmark::State& state) {
  decode_frames(state, Opcode::binary, 16 << 10, 4);
}
BENCHMARK(BM_DecodeMaskedBinary16KiB);

// The same 16 KiB text frames arriving in 1460-byte TCP segments, so most
// chunks are partial and headers are sometimes split.
void BM_DecodeMaskedText16KiBIn1460BReads(benchmark::State& state) {
  decode_frames(state, Opcode::text, 16 << 10, 4, 1460);
}
BENCHMARK(BM_DecodeMaskedText16KiBIn1460BReads);

void BM_Unmask16KiB(benchmark::State& state) {
  const size_t misalign = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> buf((16 << 10) + 8, 0x5a);
  for (auto _ : state) {
    windlass::proto::apply_mask(buf.data() + misalign, 16 << 10, kKey);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>((16 << 10)));
}
BENCHMARK(BM_Unmask16KiB)->Arg(0)->Arg(3);

}  // namespace
