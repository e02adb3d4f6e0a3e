// Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4).
// Pure: no I/O, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace windlass::proto {

// The codes windlass sends or reports. RFC 6455 §7.4.1 plus the IANA
// registrations 1012-1014.
enum class CloseCode : uint16_t {
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  unsupported_data = 1003,
  no_status = 1005,        // reported only, never sent (§7.4.1)
  abnormal = 1006,         // reported only, never sent (§7.4.1)
  invalid_payload = 1007,  // e.g. text that is not UTF-8
  policy_violation = 1008,
  message_too_big = 1009,
  mandatory_extension = 1010,
  internal_error = 1011,
  service_restart = 1012,
  try_again_later = 1013,
  bad_gateway = 1014,
  tls_handshake = 1015,    // reported only, never sent
};

// True when `code` may appear in a close frame on the wire (§7.4.1, §7.4.2):
// 1000-1003, 1007-1014 and the application ranges 3000-4999.
bool is_valid_wire_close_code(uint16_t code) noexcept;

enum class ClosePayloadError : uint8_t {
  none,
  one_byte,      // a payload of exactly 1 byte cannot hold a code (§5.5.1)
  invalid_code,  // code not allowed on the wire
  invalid_utf8,  // the reason is not UTF-8 (§5.5.1: "MUST be UTF-8")
};

struct ClosePayload {
  uint16_t code = static_cast<uint16_t>(CloseCode::no_status);  // 1005 when the payload is empty
  std::string_view reason;  // points into the payload given to parse_close_payload
};

// Parses and validates a received close-frame payload (already unmasked).
ClosePayloadError parse_close_payload(std::string_view payload, ClosePayload& out) noexcept;

// Writes code + reason into `out` (at least 125 bytes) and returns the
// number of bytes written. The reason is cut to its longest valid UTF-8
// prefix within 123 bytes, so the frame stays a legal control frame that no
// peer must reject. Code 1005 gives an empty payload (§7.4.1: never sent).
size_t build_close_payload(uint16_t code, std::string_view reason, uint8_t* out) noexcept;

}  // namespace windlass::proto
