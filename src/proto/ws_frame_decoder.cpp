// The error table of the frame decoder: one close code and one fixed reason
// per FrameError (RFC 6455 §7.4.1). The decoder itself is a template over
// its sink and lives in ws_frame_decoder_impl.hpp.
#include "proto/ws_frame_decoder.hpp"

namespace windlass::proto {

CloseCode close_code_for(FrameError e) noexcept {
  switch (e) {
    case FrameError::none: return CloseCode::normal;
    // §7.4.1: 1009 "a message that is too big for it to process".
    case FrameError::message_too_big: return CloseCode::message_too_big;
    // §7.4.1: 1007 "data within a message that was not consistent with the
    // type of the message (e.g., non-UTF-8 [RFC3629] data within a text
    // message)"; a close reason is such data too.
    case FrameError::invalid_utf8:
    case FrameError::close_invalid_utf8: return CloseCode::invalid_payload;
    // §7.4.1: 1002 "a protocol error" for every framing violation.
    case FrameError::reserved_bits:
    case FrameError::unknown_opcode:
    case FrameError::unmasked_frame:
    case FrameError::length_msb_set:
    case FrameError::control_too_long:
    case FrameError::fragmented_control:
    case FrameError::unexpected_continuation:
    case FrameError::expected_continuation:
    case FrameError::close_one_byte:
    case FrameError::close_invalid_code: return CloseCode::protocol_error;
  }
  return CloseCode::protocol_error;
}

// The phrases go into close frames, so each stays well under the 123 bytes
// a close reason may hold (§5.5) and is plain ASCII.
const char* describe(FrameError e) noexcept {
  switch (e) {
    case FrameError::none: return "no error";
    case FrameError::reserved_bits: return "reserved bits set";
    case FrameError::unknown_opcode: return "unknown opcode";
    case FrameError::unmasked_frame: return "client frame not masked";
    case FrameError::length_msb_set: return "frame length has its most significant bit set";
    case FrameError::control_too_long: return "control frame payload longer than 125 bytes";
    case FrameError::fragmented_control: return "fragmented control frame";
    case FrameError::unexpected_continuation: return "continuation frame without a message in progress";
    case FrameError::expected_continuation: return "new data frame inside a fragmented message";
    case FrameError::message_too_big: return "message too big";
    case FrameError::invalid_utf8: return "text message is not valid UTF-8";
    case FrameError::close_one_byte: return "close frame payload of one byte";
    case FrameError::close_invalid_code: return "invalid close code";
    case FrameError::close_invalid_utf8: return "close reason is not valid UTF-8";
  }
  return "unknown frame error";
}

}  // namespace windlass::proto
