// The RFC 6455 frame decoder, server side. "Only a parser": it takes bytes
// and calls a sink; it does no I/O, owns no socket, clock or logger, and is
// unit-tested and fuzzed on its own.
//
// What it enforces, each failure a distinct FrameError:
//   §5.1  client frames must be masked (when DecoderOptions::require_mask)
//   §5.2  RSV1-3 must be 0 unless an extension gave them a meaning (RSV1 with
//         permessage-deflate, RFC 7692 §6: only on the first frame of a
//         message); unknown opcodes fail; a 64-bit length with its most
//         significant bit set fails
//   §5.4  continuation without a message in progress; a new data frame while
//         a fragmented message is in progress; control frames may interleave
//   §5.5  control frames: payload <= 125 bytes and FIN set
//   §5.5.1 close payload: not 1 byte, a valid code, a UTF-8 reason
//   §8.1  text messages must be UTF-8, checked incrementally across frames and
//         reads, failing at the first byte that proves them invalid (skipped
//         for compressed messages: their text is checked after inflating)
//   max_message_size: checked against the announced length before any
//         payload is delivered, so the layer above never allocates for it
// After a close frame the decoder ignores everything that follows (§5.5.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "proto/close_code.hpp"
#include "proto/utf8_validator.hpp"
#include "proto/ws_frame.hpp"

namespace windlass::proto {

enum class FrameError : uint8_t {
  none,
  reserved_bits,            // RSV bit set without an extension that defines it -> 1002
  unknown_opcode,           // opcodes 3-7, 0xB-0xF -> 1002
  unmasked_frame,           // client frame without MASK -> 1002
  length_msb_set,           // 64-bit length with the top bit set -> 1002
  control_too_long,         // control payload > 125 -> 1002
  fragmented_control,       // control frame without FIN -> 1002
  unexpected_continuation,  // continuation with no message in progress -> 1002
  expected_continuation,    // text/binary while a fragmented message is open -> 1002
  message_too_big,          // message longer than max_message_size -> 1009
  invalid_utf8,             // text message not UTF-8 -> 1007
  close_one_byte,           // close payload of 1 byte -> 1002
  close_invalid_code,       // close code not allowed on the wire -> 1002
  close_invalid_utf8,       // close reason not UTF-8 -> 1007
};

// The close code to fail the connection with (§7.4.1), and a fixed reason
// phrase for logs and the close frame.
CloseCode close_code_for(FrameError e) noexcept;
const char* describe(FrameError e) noexcept;

struct DecoderOptions {
  uint64_t max_message_size = 16u << 20;  // bytes of (possibly compressed) payload per message
  bool require_mask = true;               // false only for client-side use (tests)
  bool allow_rsv1 = false;                // permessage-deflate negotiated (RFC 7692)
};

// The sink the decoder calls. Each callback returns true to continue or
// false to stop decoding at once (e.g. the application closed the
// connection); feed() then returns with what it consumed so far.
//
//   bool on_data(Opcode message_opcode, bool compressed,
//                uint8_t* chunk, size_t len, bool first, bool last);
//       A piece of a data message's payload, unmasked in place.
//       `message_opcode` is text or binary (never continuation);
//       `compressed` is the RSV1 bit of the message's first frame;
//       `first` marks the first chunk of the message, `last` the final one
//       (FIN frame, all of its payload). A single-frame message that arrived
//       whole in one feed() is delivered as one call with first && last (zero
//       copy); a fragmented message gives at least one chunk per frame. An
//       empty message is one call with len == 0. Chunks of text messages
//       have already passed UTF-8 validation (unless compressed).
//   Payload pointers given to on_ping / on_pong / on_close are valid only
//   during the call (a control payload split across reads comes from the
//   decoder's own buffer).
//   bool on_ping(const uint8_t* payload, size_t len);
//   bool on_pong(const uint8_t* payload, size_t len);
//   bool on_close(uint16_t code, const char* reason, size_t reason_len);
//       A valid close frame; code is 1005 when its payload was empty.
//   void on_error(FrameError e);
//       The frame stream is invalid; nothing more will be decoded.
struct DecodeResult {
  size_t consumed = 0;
  FrameError error = FrameError::none;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(DecoderOptions options = {}) noexcept
      : max_message_size_(options.max_message_size),
        require_mask_(options.require_mask),
        allow_rsv1_(options.allow_rsv1) {}

  // Decodes as much of [data, data+len) as it can, unmasking payload bytes
  // in place (so `data` must be writable), and calls the sink. Keeps partial
  // headers and control payloads internally (at most 14 + 125 bytes), so any
  // split of the input gives the same sequence of events, except that data
  // chunks may be cut differently. Returns the bytes consumed: len, unless
  // the sink stopped it or an error occurred.
  template <class Sink>
  DecodeResult feed(uint8_t* data, size_t len, Sink& sink);

  bool closed() const noexcept { return state_ == State::closed; }
  bool failed() const noexcept { return state_ == State::failed; }
  FrameError error() const noexcept { return error_; }
  // True while a fragmented message is in progress.
  bool in_message() const noexcept { return message_opcode_ != Opcode::continuation; }
  void set_allow_rsv1(bool allow) noexcept { allow_rsv1_ = allow; }
  DecoderOptions options() const noexcept { return DecoderOptions{max_message_size_, require_mask_, allow_rsv1_}; }

 private:
  enum class State : uint8_t { header, payload, control_payload, closed, failed };

  // Words first, then bytes, so the whole state packs into 64 bytes: every
  // open WebSocket carries one (see the size check in ws_connection.cpp).
  uint64_t max_message_size_;
  uint64_t remaining_ = 0;     // payload bytes of the current frame still to come
  uint64_t message_size_ = 0;  // of the current message (data frames)
  // A control frame split across reads, gathered until complete. Held only
  // while that happens (rare: a control frame is at most 125 bytes), so an
  // idle connection does not carry 125 bytes for it.
  std::unique_ptr<uint8_t[]> control_;
  // Current frame.
  uint8_t header_[kMaxFrameHeader];
  uint8_t mask_[4] = {0, 0, 0, 0};
  uint8_t header_len_ = 0;
  State state_ = State::header;
  FrameError error_ = FrameError::none;
  Opcode opcode_ = Opcode::continuation;
  uint8_t mask_offset_ = 0;  // payload bytes of the current frame already unmasked, mod 4
  // Current message (data frames).
  Opcode message_opcode_ = Opcode::continuation;  // continuation = none in progress
  Utf8Validator utf8_;
  uint8_t control_len_ = 0;
  bool fin_ : 1 = false;
  bool message_compressed_ : 1 = false;
  bool message_started_ : 1 = false;  // first chunk already delivered
  bool require_mask_ : 1;
  bool allow_rsv1_ : 1;
};

}  // namespace windlass::proto

#include "proto/ws_frame_decoder_impl.hpp"
