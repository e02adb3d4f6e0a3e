// Close codes and close payloads (RFC 6455 §5.5.1, §7.4).
#include "proto/close_code.hpp"

#include <gtest/gtest.h>

#include <string>

namespace windlass::proto {
namespace {

std::string body(uint16_t code, std::string_view reason = {}) {
  std::string out;
  out += static_cast<char>(code >> 8);
  out += static_cast<char>(code & 0xff);
  out += reason;
  return out;
}

std::string built(uint16_t code, std::string_view reason) {
  uint8_t out[125];
  const size_t n = build_close_payload(code, reason, out);
  EXPECT_LE(n, 125u);
  return std::string(reinterpret_cast<char*>(out), n);
}

TEST(CloseCode, allows_only_the_codes_rfc_6455_lets_an_endpoint_send) {
  // §7.4.1 defines 1000-1003 and 1007-1011; IANA added 1012-1014; §7.4.2
  // gives 3000-4999 to libraries and applications.
  for (uint16_t ok :
       std::initializer_list<uint16_t>{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                                       3999, 4000, 4999}) {
    EXPECT_TRUE(is_valid_wire_close_code(ok)) << ok;
  }
  // 1004 is reserved; 1005, 1006 and 1015 are for local reporting only.
  for (uint16_t bad : std::initializer_list<uint16_t>{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(is_valid_wire_close_code(bad)) << bad;
  }
}

TEST(CloseCode, agrees_with_the_enum_on_which_codes_are_reported_only) {
  EXPECT_FALSE(is_valid_wire_close_code(static_cast<uint16_t>(CloseCode::no_status)));
  EXPECT_FALSE(is_valid_wire_close_code(static_cast<uint16_t>(CloseCode::abnormal)));
  EXPECT_FALSE(is_valid_wire_close_code(static_cast<uint16_t>(CloseCode::tls_handshake)));
  for (CloseCode c : {CloseCode::normal, CloseCode::going_away, CloseCode::protocol_error,
                      CloseCode::unsupported_data, CloseCode::invalid_payload, CloseCode::policy_violation,
                      CloseCode::message_too_big, CloseCode::mandatory_extension, CloseCode::internal_error,
                      CloseCode::service_restart, CloseCode::try_again_later, CloseCode::bad_gateway}) {
    EXPECT_TRUE(is_valid_wire_close_code(static_cast<uint16_t>(c)));
  }
}

TEST(CloseCode, parses_an_empty_payload_as_no_status) {
  ClosePayload p;
  p.code = 1;
  EXPECT_EQ(parse_close_payload("", p), ClosePayloadError::none);
  EXPECT_EQ(p.code, 1005);
  EXPECT_TRUE(p.reason.empty());
}

TEST(CloseCode, rejects_a_one_byte_payload) {
  ClosePayload p;
  EXPECT_EQ(parse_close_payload("\x03", p), ClosePayloadError::one_byte);
}

TEST(CloseCode, parses_a_code_in_network_byte_order_and_a_reason) {
  ClosePayload p;
  const std::string payload = body(1001, "going \xE2\x86\x92 away");
  EXPECT_EQ(parse_close_payload(payload, p), ClosePayloadError::none);
  EXPECT_EQ(p.code, 1001);
  EXPECT_EQ(p.reason, "going \xE2\x86\x92 away");
  EXPECT_EQ(p.reason.data(), payload.data() + 2) << "the reason points into the payload";
  EXPECT_EQ(parse_close_payload(body(4321), p), ClosePayloadError::none);
  EXPECT_EQ(p.code, 4321);
  EXPECT_TRUE(p.reason.empty());
}

TEST(CloseCode, rejects_a_code_not_allowed_on_the_wire) {
  ClosePayload p;
  for (uint16_t code : std::initializer_list<uint16_t>{0, 999, 1004, 1005, 1006, 1015, 2999, 5000}) {
    EXPECT_EQ(parse_close_payload(body(code, "x"), p), ClosePayloadError::invalid_code) << code;
  }
}

TEST(CloseCode, rejects_a_reason_that_is_not_utf8) {
  ClosePayload p;
  EXPECT_EQ(parse_close_payload(body(1000, "\xFF"), p), ClosePayloadError::invalid_utf8);
  EXPECT_EQ(parse_close_payload(body(1000, "\xED\xA0\x80"), p), ClosePayloadError::invalid_utf8);
  EXPECT_EQ(parse_close_payload(body(1000, "ends in \xC3"), p), ClosePayloadError::invalid_utf8);
}

TEST(CloseCode, builds_a_payload_with_code_and_reason) {
  EXPECT_EQ(built(1000, "bye"), body(1000, "bye"));
  EXPECT_EQ(built(4000, ""), body(4000));
}

TEST(CloseCode, builds_an_empty_payload_for_no_status) {
  // 1005 must never appear on the wire (§7.4.1): "no status" is an empty body.
  EXPECT_EQ(built(1005, "ignored"), "");
}

TEST(CloseCode, cuts_a_long_reason_to_123_bytes) {
  const std::string reason(200, 'r');
  const std::string out = built(1008, reason);
  EXPECT_EQ(out.size(), 125u);
  EXPECT_EQ(out, body(1008, reason.substr(0, 123)));
}

TEST(CloseCode, cuts_a_long_reason_at_a_code_point_boundary) {
  // 121 ASCII bytes and a three-byte euro sign: only 2 of its bytes would fit.
  const std::string reason = std::string(121, 'a') + "\xE2\x82\xAC" + "tail";
  const std::string out = built(1000, reason);
  EXPECT_EQ(out, body(1000, std::string(121, 'a')));
  ClosePayload p;
  EXPECT_EQ(parse_close_payload(out, p), ClosePayloadError::none);
  // Exactly 123 bytes that end on a boundary are kept whole.
  const std::string fits = std::string(120, 'a') + "\xE2\x82\xAC";
  EXPECT_EQ(built(1000, fits), body(1000, fits));
}

TEST(CloseCode, keeps_only_the_valid_utf8_prefix_of_a_reason) {
  EXPECT_EQ(built(1011, "oops \xFF more"), body(1011, "oops "));
  EXPECT_EQ(built(1011, "half \xE2\x82"), body(1011, "half "));
}

TEST(CloseCode, round_trips_through_build_and_parse) {
  for (uint16_t code : std::initializer_list<uint16_t>{1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999}) {
    for (std::string reason :
         {std::string(), std::string("x"), std::string(123, 'y'), std::string("\xF0\x9F\x98\x80 done")}) {
      const std::string out = built(code, reason);
      ClosePayload p;
      ASSERT_EQ(parse_close_payload(out, p), ClosePayloadError::none);
      EXPECT_EQ(p.code, code);
      EXPECT_EQ(p.reason, reason);
    }
  }
}

}  // namespace
}  // namespace windlass::proto
