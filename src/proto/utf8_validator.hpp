// Incremental UTF-8 validation (RFC 3629), as RFC 6455 §8.1 requires for
// text messages and close reasons. Fails at the first byte that proves the
// input invalid (overlongs, surrogates, code points above U+10FFFF, bad
// continuation bytes), so a connection can be failed as early as the bytes
// allow (Autobahn case family 6 "fail fast"). Pure: no I/O, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace windlass::proto {

class Utf8Validator {
 public:
  // Consumes more bytes of the same text. Returns false as soon as the
  // input so far cannot be the prefix of valid UTF-8; after that it stays
  // false until reset().
  bool feed(const uint8_t* data, size_t len) noexcept;
  bool feed(std::string_view s) noexcept {
    return feed(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }

  // True when everything fed so far is valid and ends on a code point
  // boundary (call at the end of a message).
  bool complete() const noexcept { return state_ == 0; }
  bool failed() const noexcept { return state_ == kReject; }
  void reset() noexcept { state_ = 0; }

  static constexpr uint8_t kReject = 0xff;

 private:
  uint8_t state_ = 0;  // 0 = at a boundary; kReject = invalid; else mid-sequence
};

// Whole-buffer convenience.
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace windlass::proto
