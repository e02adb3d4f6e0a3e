// libFuzzer target for close payloads (RFC 6455 §5.5.1, §7.4).
//
// parse_close_payload must classify every input exactly as the RFC says,
// and build_close_payload must always produce a payload that parses back to
// the same code and to the longest valid UTF-8 prefix of the reason that
// fits in 123 bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/close_code.hpp"
#include "proto/utf8_validator.hpp"

namespace {

using windlass::proto::build_close_payload;
using windlass::proto::ClosePayload;
using windlass::proto::ClosePayloadError;
using windlass::proto::is_valid_utf8;
using windlass::proto::is_valid_wire_close_code;
using windlass::proto::parse_close_payload;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_parse(std::string_view payload) {
  ClosePayload out;
  const ClosePayloadError e = parse_close_payload(payload, out);
  if (payload.empty()) {
    check(e == ClosePayloadError::none && out.code == 1005 && out.reason.empty());
    return;
  }
  if (payload.size() == 1) {
    check(e == ClosePayloadError::one_byte);
    return;
  }
  const auto code =
      static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]));
  if (!is_valid_wire_close_code(code)) {
    check(e == ClosePayloadError::invalid_code);
    return;
  }
  if (!is_valid_utf8(payload.substr(2))) {
    check(e == ClosePayloadError::invalid_utf8);
    return;
  }
  check(e == ClosePayloadError::none);
  check(out.code == code);
  check(out.reason.data() == payload.data() + 2 && out.reason.size() == payload.size() - 2);
}

void check_build(std::string_view input) {
  if (input.size() < 2) return;
  const auto code =
      static_cast<uint16_t>((static_cast<uint8_t>(input[0]) << 8) | static_cast<uint8_t>(input[1]));
  const std::string_view reason = input.substr(2);
  // A canary after the 125 bytes the contract allows catches overruns.
  uint8_t out[125 + 8];
  for (auto& b : out) b = 0xA5;
  const size_t n = build_close_payload(code, reason, out);
  for (size_t i = 125; i < sizeof out; ++i) check(out[i] == 0xA5);
  check(n <= 125);
  if (code == 1005) {
    check(n == 0);
    return;
  }
  check(n >= 2);
  check(out[0] == (code >> 8) && out[1] == (code & 0xff));
  const std::string_view kept(reinterpret_cast<const char*>(out + 2), n - 2);
  check(reason.substr(0, kept.size()) == kept);
  check(is_valid_utf8(kept));
  // Nothing longer would do: every longer prefix within 123 bytes is invalid.
  const size_t limit = reason.size() < 123 ? reason.size() : 123;
  for (size_t k = kept.size() + 1; k <= limit; ++k) check(!is_valid_utf8(reason.substr(0, k)));
  ClosePayload parsed;
  const ClosePayloadError e =
      parse_close_payload(std::string_view(reinterpret_cast<const char*>(out), n), parsed);
  if (is_valid_wire_close_code(code)) {
    check(e == ClosePayloadError::none);
    check(parsed.code == code && parsed.reason == kept);
  } else {
    check(e == ClosePayloadError::invalid_code);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_parse(input);
  check_build(input);
  return 0;
}
