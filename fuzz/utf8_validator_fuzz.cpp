// libFuzzer target for Utf8Validator (RFC 3629).
//
// Differential: a plain reference decoder in this file says whether the
// input is valid, whether it ends on a code point boundary and at which
// byte it first becomes impossible to complete; the validator must agree on
// all three, fed whole, byte by byte and split at a data-derived point.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/utf8_validator.hpp"

namespace {

using windlass::proto::Utf8Validator;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr size_t kNone = static_cast<size_t>(-1);

// True when some continuation of a sequence with the value bits `bits` so
// far and `remaining` continuation bytes still to come decodes to a scalar
// value of at least `min` (not overlong), at most U+10FFFF and outside the
// surrogates U+D800..U+DFFF (RFC 3629 §3).
bool can_complete(uint32_t bits, int remaining, uint32_t min) {
  const uint32_t lo = bits << (6 * remaining);
  const uint32_t hi = lo | ((1u << (6 * remaining)) - 1);
  const uint32_t from = lo > min ? lo : min;
  const uint32_t to = hi < 0x10FFFF ? hi : 0x10FFFF;
  if (from > to) return false;
  return from < 0xD800 || to > 0xDFFF;
}

struct Reference {
  size_t fail_at = kNone;
  bool complete = true;
};

Reference reference(const uint8_t* s, size_t n) {
  Reference r;
  size_t i = 0;
  while (i < n) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    int need = 0;
    uint32_t bits = 0;
    uint32_t min = 0;
    if ((b & 0xE0) == 0xC0) {
      need = 1, bits = b & 0x1Fu, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      need = 2, bits = b & 0x0Fu, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      need = 3, bits = b & 0x07u, min = 0x10000;
    }
    if (need == 0 || !can_complete(bits, need, min)) {
      r.fail_at = i;
      r.complete = false;
      return r;
    }
    ++i;
    for (int k = need - 1; k >= 0; --k, ++i) {
      if (i == n) {
        r.complete = false;
        return r;
      }
      const uint8_t c = s[i];
      if ((c & 0xC0) != 0x80 || !can_complete((bits << 6) | (c & 0x3Fu), k, min)) {
        r.fail_at = i;
        r.complete = false;
        return r;
      }
      bits = (bits << 6) | (c & 0x3Fu);
    }
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Reference want = reference(data, size);

  Utf8Validator whole;
  const bool whole_ok = whole.feed(data, size);
  check(whole_ok == (want.fail_at == kNone));
  check(whole.complete() == want.complete);
  check(whole.failed() == !whole_ok);
  check(windlass::proto::is_valid_utf8(std::string_view(reinterpret_cast<const char*>(data), size)) ==
        want.complete);

  // Byte by byte: the first false must come exactly at the reference's
  // fail position (fail fast), and stay false afterwards.
  Utf8Validator bytewise;
  size_t first_fail = kNone;
  for (size_t i = 0; i < size; ++i) {
    const bool ok = bytewise.feed(data + i, 1);
    if (!ok && first_fail == kNone) first_fail = i;
    check(ok == (first_fail == kNone));
  }
  check(first_fail == want.fail_at);
  check(bytewise.complete() == want.complete);

  // Split at a point taken from the data, with an empty feed in between.
  if (size > 0) {
    const size_t cut = data[0] % (size + 1);
    Utf8Validator split;
    const bool a = split.feed(data, cut);
    const bool b = split.feed(data + cut, 0);
    const bool c = split.feed(data + cut, size - cut);
    check((a && b && c) == whole_ok);
    check(split.complete() == want.complete);
    split.reset();
    check(split.complete() && !split.failed());
  }
  return 0;
}
