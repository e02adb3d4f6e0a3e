// Frame headers and masking (RFC 6455 §5.2, §5.3).
#include "proto/ws_frame.hpp"

#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace windlass::proto {

namespace {

// One pass of §5.3 masking over `len` bytes. With kTally it also ORs every
// output byte together, so the caller learns for free whether the unmasked
// bytes are all ASCII (the UTF-8 check can then skip them). The vector
// loop is SSE2, which every x86-64 CPU has, so portable builds (and
// valgrind) keep it; elsewhere the same loop runs on 64-bit words.
template <bool kTally>
uint8_t mask_pass(uint8_t* data, size_t len, const uint8_t mask[4], size_t key_offset) noexcept {
  // The key's bytes in memory order, rotated to start where `data` sits in
  // the key (so right on any endianness), then repeated. Every block below
  // is a multiple of 4 bytes long, so the rotation holds for each of them.
  // Loads and stores are unaligned: no byte-wise head, which matters for
  // the many small frames of a chat.
  uint32_t key4;
  std::memcpy(&key4, mask, 4);
  const int shift = static_cast<int>(key_offset & 3) * 8;  // byte r of the key first
  key4 = std::endian::native == std::endian::little ? std::rotr(key4, shift) : std::rotl(key4, shift);
  const uint64_t key8 = (uint64_t{key4} << 32) | key4;  // the same 4 bytes twice, either endianness
  uint8_t tally = 0;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i key = _mm_set1_epi32(static_cast<int>(key4));
  __m128i acc = _mm_setzero_si128();
  for (; len - i >= 64; i += 64) {
    auto* p = reinterpret_cast<__m128i*>(data + i);
    const __m128i a = _mm_xor_si128(_mm_loadu_si128(p), key);
    const __m128i b = _mm_xor_si128(_mm_loadu_si128(p + 1), key);
    const __m128i c = _mm_xor_si128(_mm_loadu_si128(p + 2), key);
    const __m128i d = _mm_xor_si128(_mm_loadu_si128(p + 3), key);
    _mm_storeu_si128(p, a);
    _mm_storeu_si128(p + 1, b);
    _mm_storeu_si128(p + 2, c);
    _mm_storeu_si128(p + 3, d);
    if constexpr (kTally) acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
  }
  for (; len - i >= 16; i += 16) {
    auto* p = reinterpret_cast<__m128i*>(data + i);
    const __m128i a = _mm_xor_si128(_mm_loadu_si128(p), key);
    _mm_storeu_si128(p, a);
    if constexpr (kTally) acc = _mm_or_si128(acc, a);
  }
  if constexpr (kTally) {
    if (_mm_movemask_epi8(acc) != 0) tally = 0x80;
  }
#endif
  uint64_t acc8 = 0;
  for (; len - i >= 8; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= key8;
    std::memcpy(data + i, &w, 8);
    if constexpr (kTally) acc8 |= w;
  }
  if constexpr (kTally) {
    if ((acc8 & 0x8080808080808080ull) != 0) tally = 0x80;
  }
  if (len - i >= 4) {
    uint32_t w;
    std::memcpy(&w, data + i, 4);
    w ^= key4;
    std::memcpy(data + i, &w, 4);
    if constexpr (kTally) tally |= (w & 0x80808080u) != 0 ? 0x80 : 0;
    i += 4;
  }
  // Tail: fewer than four bytes, still at a multiple of 4 from `data`.
  const uint8_t* const key_bytes = reinterpret_cast<const uint8_t*>(&key4);  // memory order
  for (; i < len; ++i) {
    data[i] ^= key_bytes[i & 3];
    if constexpr (kTally) tally |= data[i];
  }
  return tally;
}

}  // namespace

void apply_mask(uint8_t* data, size_t len, const uint8_t mask[4], size_t key_offset) noexcept {
  mask_pass<false>(data, len, mask, key_offset);
}

bool apply_mask_is_ascii(uint8_t* data, size_t len, const uint8_t mask[4], size_t key_offset) noexcept {
  return (mask_pass<true>(data, len, mask, key_offset) & 0x80) == 0;
}

}  // namespace windlass::proto
