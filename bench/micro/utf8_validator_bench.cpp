// Micro-benchmarks of UTF-8 validation: pure ASCII (the word-at-a-time fast
// path) and mixed text, where the DFA runs for most bytes.
#include <benchmark/benchmark.h>

#include <string>

#include "proto/utf8_validator.hpp"

namespace {

constexpr size_t kSize = 16 << 10;

std::string repeat_to_size(const std::string& unit) {
  std::string s;
  while (s.size() + unit.size() <= kSize) s += unit;
  while (s.size() < kSize) s += 'x';
  return s;
}

void validate(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    windlass::proto::Utf8Validator v;
    const bool ok = v.feed(text) && v.complete();
    benchmark::DoNotOptimize(ok);
    if (!ok) {
      state.SkipWithError("invalid text");
      return;
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}

void BM_Utf8Ascii16KiB(benchmark::State& state) {
  validate(state, repeat_to_size("{\"event\":\"message\",\"channel\":\"room-42\",\"n\":12345}\n"));
}
BENCHMARK(BM_Utf8Ascii16KiB);

// Mostly ASCII with an accented letter or symbol every few words: typical
// European-language chat.
void BM_Utf8MostlyAsciiText16KiB(benchmark::State& state) {
  validate(state, repeat_to_size("Caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
                                 "e costs 5 \xE2\x82\xAC today. "));
}
BENCHMARK(BM_Utf8MostlyAsciiText16KiB);

// Greek, Cyrillic, CJK and emoji with ASCII spaces: every sequence length.
void BM_Utf8MixedText16KiB(benchmark::State& state) {
  validate(state, repeat_to_size("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5 "
                                 "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 "
                                 "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C "
                                 "\xF0\x9F\x98\x80\xF0\x9F\x9A\x80 ok "));
}
BENCHMARK(BM_Utf8MixedText16KiB);

}  // namespace
