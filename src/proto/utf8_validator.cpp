// Incremental UTF-8 validation (RFC 3629 §3 and §4) as a small DFA.
//
// Each byte falls in one of twelve classes; the class and the current state
// pick the next state. The states remember exactly how many continuation
// bytes are still owed and, right after the four lead bytes that restrict
// their second byte (E0, ED, F0, F4), which range that second byte must fall
// in. That is what makes the validator fail at the first byte that proves
// the input invalid instead of at the end of a sequence.
#include "proto/utf8_validator.hpp"

#include <array>
#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace windlass::proto {
namespace {

// Byte classes. The continuation range 80..BF is split in three because the
// restricted second bytes (RFC 3629 §4 syntax) are A0..BF after E0, 80..9F
// after ED, 90..BF after F0 and 80..8F after F4.
enum Class : uint8_t {
  kAscii,    // 00..7F
  kCont8,    // 80..8F
  kCont9,    // 90..9F
  kContAB,   // A0..BF
  kInvalid,  // C0, C1 (always overlong) and F5..FF (above U+10FFFF or not UTF-8 at all)
  kLead2,    // C2..DF
  kLeadE0,   // E0: the next byte must be A0..BF, or the form is overlong
  kLead3,    // E1..EC, EE, EF
  kLeadED,   // ED: the next byte must be 80..9F, or it encodes a surrogate
  kLeadF0,   // F0: the next byte must be 90..BF, or the form is overlong
  kLead4,    // F1..F3
  kLeadF4,   // F4: the next byte must be 80..8F, or it is above U+10FFFF
  kClassCount,
};

// States. 0 is "at a code point boundary"; the reject state, which every
// invalid byte leads to and which is never left, follows the last of these.
enum State : uint8_t {
  kBoundary,
  kNeed1,    // one continuation byte (80..BF) left
  kNeed2,    // two left, no restriction on the next
  kNeed3,    // three left, no restriction on the next
  kAfterE0,  // two left, next must be A0..BF
  kAfterED,  // two left, next must be 80..9F
  kAfterF0,  // three left, next must be 90..BF
  kAfterF4,  // three left, next must be 80..8F
  kStateCount,
};

constexpr std::array<uint8_t, 256> make_class_table() {
  std::array<uint8_t, 256> t{};
  for (int b = 0; b < 256; ++b) {
    uint8_t c = kInvalid;  // C0, C1, F5..FF
    if (b <= 0x7F) {
      c = kAscii;
    } else if (b <= 0x8F) {
      c = kCont8;
    } else if (b <= 0x9F) {
      c = kCont9;
    } else if (b <= 0xBF) {
      c = kContAB;
    } else if (b >= 0xC2 && b <= 0xDF) {
      c = kLead2;
    } else if (b == 0xE0) {
      c = kLeadE0;
    } else if (b == 0xED) {
      c = kLeadED;
    } else if (b >= 0xE1 && b <= 0xEF) {
      c = kLead3;
    } else if (b == 0xF0) {
      c = kLeadF0;
    } else if (b >= 0xF1 && b <= 0xF3) {
      c = kLead4;
    } else if (b == 0xF4) {
      c = kLeadF4;
    }
    t[static_cast<size_t>(b)] = c;
  }
  return t;
}

// The transition function, written as the rules of RFC 3629 §4.
constexpr int kRejectState = kStateCount;  // internal number of the sink state

constexpr int next_state(int from, int c) {
  switch (from) {
    case kBoundary:
      // ASCII stays; a lead byte says how much follows; a continuation or
      // never-valid byte is an error right away.
      switch (c) {
        case kAscii: return kBoundary;
        case kLead2: return kNeed1;
        case kLeadE0: return kAfterE0;
        case kLead3: return kNeed2;
        case kLeadED: return kAfterED;
        case kLeadF0: return kAfterF0;
        case kLead4: return kNeed3;
        case kLeadF4: return kAfterF4;
        default: return kRejectState;
      }
    case kNeed1:
    case kNeed2:
    case kNeed3: {
      // Each continuation byte moves one state closer to the boundary.
      static_assert(kNeed1 == kBoundary + 1 && kNeed2 == kNeed1 + 1 && kNeed3 == kNeed2 + 1);
      const bool continuation = c == kCont8 || c == kCont9 || c == kContAB;
      return continuation ? from - 1 : kRejectState;
    }
    // The restricted second bytes.
    case kAfterE0: return c == kContAB ? kNeed1 : kRejectState;
    case kAfterED: return c == kCont8 || c == kCont9 ? kNeed1 : kRejectState;
    case kAfterF0: return c == kCont9 || c == kContAB ? kNeed2 : kRejectState;
    case kAfterF4: return c == kCont8 ? kNeed2 : kRejectState;
    default: return kRejectState;
  }
}

// The DFA is run in "shift" form: each state is a bit offset (a multiple of
// 6), and kRow[b] packs, at each state's offset, the offset of the state
// that byte b leads to. One step is then `(kRow[b] >> s) & 63`: the table
// load does not depend on the state, so the only serial work per byte is a
// shift and a mask, which is what makes non-ASCII text fast.
constexpr int kBits = 6;
constexpr uint64_t offset_of(int state) {
  return static_cast<uint64_t>(state) * kBits;
}
static_assert(offset_of(kRejectState) + kBits <= 64, "all states must fit in one word");
constexpr uint64_t kRejectOffset = offset_of(kRejectState);
// The stored state must keep the meaning the header gives it: 0 at a
// boundary, Utf8Validator::kReject when invalid, anything else in between.
static_assert(offset_of(kBoundary) == 0);
static_assert(kRejectOffset != Utf8Validator::kReject);

constexpr std::array<uint64_t, 256> make_rows() {
  const std::array<uint8_t, 256> classes = make_class_table();
  std::array<uint64_t, 256> rows{};
  for (size_t b = 0; b < 256; ++b) {
    uint64_t row = 0;
    for (int from = 0; from <= kRejectState; ++from) {
      row |= offset_of(next_state(from, classes[b])) << offset_of(from);
    }
    rows[b] = row;
  }
  return rows;
}

constexpr std::array<uint64_t, 256> kRow = make_rows();

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Index of the first byte in `bits` (a mask of 0x80 bits of a word loaded
// from memory) that has its top bit set.
inline size_t first_high_byte(uint64_t bits) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<size_t>(std::countr_zero(bits)) / 8;
  } else {
    return static_cast<size_t>(std::countl_zero(bits)) / 8;
  }
}

// The index of the first byte at or after `i` that has its top bit set, or
// a position at most 15 bytes before it (or `len`); the word loop in feed()
// finishes the job. SSE2 is part of x86-64, so portable builds keep it.
inline size_t skip_ascii(const uint8_t* data, size_t i, size_t len) noexcept {
#if defined(__SSE2__)
  for (; len - i >= 32; i += 32) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 16));
    if (_mm_movemask_epi8(_mm_or_si128(a, b)) != 0) break;
  }
  for (; len - i >= 16; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    const int high = _mm_movemask_epi8(a);
    if (high != 0) return i + static_cast<size_t>(std::countr_zero(static_cast<unsigned>(high)));
  }
#else
  (void)data;
  (void)len;
#endif
  return i;
}

}  // namespace

bool Utf8Validator::feed(const uint8_t* data, size_t len) noexcept {
  if (state_ == kReject) return false;
  uint64_t state = state_;
  size_t i = 0;
  while (i < len) {
    if (state == 0) {
      // Most text is ASCII: skip it a block at a time.
      i = skip_ascii(data, i, len);
      while (len - i >= 8) {
        uint64_t word;
        std::memcpy(&word, data + i, 8);
        const uint64_t high = word & kHighBits;
        if (high != 0) {
          i += first_high_byte(high);
          break;
        }
        i += 8;
      }
      while (i < len && data[i] < 0x80) ++i;
      if (i == len) break;
    }
    // Run the DFA over a block without testing each step: the reject state
    // never leads anywhere else, so one test per block still fails the feed
    // that holds the first invalid byte.
    const size_t end = len - i > 16 ? i + 16 : len;
    for (; i < end; ++i) state = (kRow[data[i]] >> state) & 63;
    if (state == kRejectOffset) {
      state_ = kReject;
      return false;
    }
  }
  state_ = static_cast<uint8_t>(state);
  return true;
}

bool is_valid_utf8(std::string_view s) noexcept {
  Utf8Validator v;
  return v.feed(s) && v.complete();
}

}  // namespace windlass::proto
