// Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4).
#include "proto/close_code.hpp"

#include <cstring>

#include "proto/utf8_validator.hpp"
#include "proto/ws_frame.hpp"

namespace windlass::proto {

bool is_valid_wire_close_code(uint16_t code) noexcept {
  // §7.4.1: 1004 is reserved, and 1005, 1006 and 1015 describe a missing or
  // failed close on the local side only, so none of them may be sent.
  // 1012-1014 are the IANA registrations every browser accepts.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  // §7.4.2: 3000-3999 are registered with IANA, 4000-4999 are private use.
  // Everything else (0-999, 1016-2999, 5000+) is not a legal code.
  return code >= 3000 && code <= 4999;
}

ClosePayloadError parse_close_payload(std::string_view payload, ClosePayload& out) noexcept {
  out = ClosePayload{};
  // §5.5.1: the body is optional; without one the status is 1005 (§7.1.5).
  if (payload.empty()) return ClosePayloadError::none;
  // §5.5.1: "the first two bytes of the body MUST be a 2-byte unsigned
  // integer", so a single byte cannot be a body.
  if (payload.size() == 1) return ClosePayloadError::one_byte;
  const auto* bytes = reinterpret_cast<const uint8_t*>(payload.data());
  const auto code = static_cast<uint16_t>((bytes[0] << 8) | bytes[1]);  // network byte order
  if (!is_valid_wire_close_code(code)) return ClosePayloadError::invalid_code;
  const std::string_view reason = payload.substr(2);
  // §5.5.1: the reason "MUST be UTF-8"; §8.1 makes invalid text fatal.
  if (!is_valid_utf8(reason)) return ClosePayloadError::invalid_utf8;
  out.code = code;
  out.reason = reason;
  return ClosePayloadError::none;
}

size_t build_close_payload(uint16_t code, std::string_view reason, uint8_t* out) noexcept {
  // 1005 means "no status code was present" (§7.4.1), so the only faithful
  // way to send it is an empty close body.
  if (code == static_cast<uint16_t>(CloseCode::no_status)) return 0;
  out[0] = static_cast<uint8_t>(code >> 8);
  out[1] = static_cast<uint8_t>(code & 0xff);
  // §5.5: a control payload is at most 125 bytes, so the reason gets 123.
  // Keep the longest prefix that ends on a code point boundary and is valid
  // UTF-8, so the peer never receives a reason it must reject (§5.5.1).
  constexpr size_t kMaxReason = kMaxControlPayload - 2;
  const size_t limit = reason.size() < kMaxReason ? reason.size() : kMaxReason;
  const auto* bytes = reinterpret_cast<const uint8_t*>(reason.data());
  Utf8Validator utf8;
  size_t keep = 0;
  for (size_t i = 0; i < limit; ++i) {
    if (!utf8.feed(bytes + i, 1)) break;
    if (utf8.complete()) keep = i + 1;
  }
  if (keep != 0) std::memcpy(out + 2, bytes, keep);
  return 2 + keep;
}

}  // namespace windlass::proto
