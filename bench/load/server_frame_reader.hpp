// Reads the frames a server sends (RFC 6455 §5.2), client side, streaming.
//
// The load generator has its own reader rather than the server's
// FrameDecoder on purpose: checking the server's output with code written
// independently of it catches encoder bugs that a shared decoder would
// share. It is also cheaper, which keeps the client off the critical path:
// payload bytes are handed to the sink where they lie in the receive
// buffer, never copied, and text is not UTF-8 checked (the echo check
// compares bytes instead). Only partial headers and control payloads are
// kept between reads, so one reader costs under 160 bytes per connection.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "proto/ws_frame.hpp"

namespace windlass::load {

using proto::Opcode;

enum class ReadError : uint8_t {
  none,
  masked_frame,             // §5.1: a server must not mask its frames
  reserved_bits,            // §5.2: RSV1-3 set, and we negotiate no extension
  unknown_opcode,           // §5.2: opcodes 3-7 and 0xB-0xF are reserved
  length_msb_set,           // §5.2: the 64-bit length's top bit must be 0
  control_too_long,         // §5.5: control payload over 125 bytes
  fragmented_control,       // §5.5: control frames must not be fragmented
  unexpected_continuation,  // §5.4: continuation with no message open
  expected_continuation,    // §5.4: new data frame inside a fragmented message
};

inline const char* describe(ReadError e) noexcept {
  switch (e) {
    case ReadError::none: return "no error";
    case ReadError::masked_frame: return "server sent a masked frame (RFC 6455 5.1)";
    case ReadError::reserved_bits: return "reserved bits set without an extension (5.2)";
    case ReadError::unknown_opcode: return "reserved opcode (5.2)";
    case ReadError::length_msb_set: return "64-bit length with its top bit set (5.2)";
    case ReadError::control_too_long: return "control frame payload over 125 bytes (5.5)";
    case ReadError::fragmented_control: return "fragmented control frame (5.5)";
    case ReadError::unexpected_continuation: return "continuation frame with no message open (5.4)";
    case ReadError::expected_continuation: return "new data frame inside a fragmented message (5.4)";
  }
  return "unknown error";
}

// The sink is any type with:
//   void on_data(const uint8_t* chunk, size_t len);   a piece of a data message
//   void on_message_end(Opcode opcode, uint64_t length);  the message is complete
//   bool on_control(Opcode opcode, const uint8_t* payload, size_t len);
//       a whole ping, pong or close frame; return false to stop reading
//       (after a close frame nothing more is read, §5.5.1)
class ServerFrameReader {
 public:
  template <class Sink>
  ReadError feed(const uint8_t* data, size_t len, Sink& sink) {
    while (len > 0 && !stopped_) {
      if (state_ == State::header) {
        const size_t take = std::min(len, header_needed() - header_len_);
        std::memcpy(header_ + header_len_, data, take);
        header_len_ = static_cast<uint8_t>(header_len_ + take);
        data += take;
        len -= take;
        if (header_len_ < header_needed()) continue;  // the 2-byte prefix may reveal more to read
        if (const ReadError e = start_frame(); e != ReadError::none) return fail(e);
        if (remaining_ == 0 && !finish_frame(sink)) return ReadError::none;
      } else if (state_ == State::data) {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(len, remaining_));
        sink.on_data(data, take);
        message_length_ += take;
        remaining_ -= take;
        data += take;
        len -= take;
        if (remaining_ == 0) finish_frame(sink);
      } else {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(len, remaining_));
        std::memcpy(control_ + control_len_, data, take);
        control_len_ = static_cast<uint8_t>(control_len_ + take);
        remaining_ -= take;
        data += take;
        len -= take;
        if (remaining_ == 0 && !finish_frame(sink)) return ReadError::none;
      }
    }
    return ReadError::none;
  }

  // True once the sink stopped reading (after a close frame) or a frame was
  // invalid; every later byte is ignored.
  bool stopped() const noexcept { return stopped_; }

 private:
  enum class State : uint8_t { header, data, control };

  // The header is 2 bytes, plus 2 or 8 of extended length (server frames
  // carry no mask), known once the first two bytes are in.
  size_t header_needed() const noexcept {
    if (header_len_ < 2) return 2;
    const uint8_t len7 = header_[1] & 0x7f;
    return len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
  }

  ReadError start_frame() noexcept {
    const uint8_t b0 = header_[0];
    const uint8_t b1 = header_[1];
    header_len_ = 0;
    fin_ = (b0 & 0x80) != 0;
    opcode_ = static_cast<Opcode>(b0 & 0x0f);
    if ((b0 & 0x70) != 0) return ReadError::reserved_bits;
    if ((b1 & 0x80) != 0) return ReadError::masked_frame;

    uint64_t length = b1 & 0x7f;
    if (length == 126) {
      length = (uint64_t{header_[2]} << 8) | header_[3];
    } else if (length == 127) {
      length = 0;
      for (int i = 2; i < 10; ++i) length = (length << 8) | header_[i];
      if ((length >> 63) != 0) return ReadError::length_msb_set;
    }
    remaining_ = length;

    switch (opcode_) {
      case Opcode::ping:
      case Opcode::pong:
      case Opcode::close:
        if (!fin_) return ReadError::fragmented_control;
        if (length > proto::kMaxControlPayload) return ReadError::control_too_long;
        control_len_ = 0;
        state_ = State::control;
        return ReadError::none;
      case Opcode::continuation:
        if (!in_message_) return ReadError::unexpected_continuation;
        state_ = State::data;
        return ReadError::none;
      case Opcode::text:
      case Opcode::binary:
        if (in_message_) return ReadError::expected_continuation;
        in_message_ = true;
        message_opcode_ = opcode_;
        message_length_ = 0;
        state_ = State::data;
        return ReadError::none;
    }
    return ReadError::unknown_opcode;
  }

  // Returns false when the sink asked to stop.
  template <class Sink>
  bool finish_frame(Sink& sink) {
    const State finished = state_;
    state_ = State::header;
    if (finished == State::control) {
      if (!sink.on_control(opcode_, control_, control_len_)) stopped_ = true;
      return !stopped_;
    }
    if (fin_) {
      in_message_ = false;
      sink.on_message_end(message_opcode_, message_length_);
    }
    return true;
  }

  ReadError fail(ReadError e) noexcept {
    stopped_ = true;
    return e;
  }

  State state_ = State::header;
  bool stopped_ = false;
  bool fin_ = false;
  bool in_message_ = false;
  Opcode opcode_ = Opcode::continuation;
  Opcode message_opcode_ = Opcode::continuation;
  uint8_t header_len_ = 0;
  uint8_t control_len_ = 0;
  uint8_t header_[10];
  uint8_t control_[proto::kMaxControlPayload];
  uint64_t remaining_ = 0;
  uint64_t message_length_ = 0;
};

}  // namespace windlass::load
