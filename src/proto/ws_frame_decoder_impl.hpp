// The body of FrameDecoder::feed, a template over the sink so that every
// callback is a direct, inlinable call. Included only at the end of
// ws_frame_decoder.hpp, after the class it defines a member of.
//
// Hot path: when a frame's whole header is in the buffer it is parsed
// straight from the buffer; only a header split across reads is copied into
// header_. Payloads are unmasked in place, sixteen bytes at a time, and given
// to the sink without a copy. Nothing here allocates, except 125 bytes held
// while a control frame is split across reads.
#pragma once

#include <cstring>
#include <string_view>

namespace windlass::proto {
namespace frame_detail {

// Size of the whole header announced by its second byte (§5.2).
constexpr size_t header_size(uint8_t b1) noexcept {
  const uint8_t len7 = b1 & 0x7f;
  return size_t{2} + (len7 == 126 ? size_t{2} : len7 == 127 ? size_t{8} : size_t{0}) + ((b1 & 0x80) != 0 ? size_t{4} : size_t{0});
}

// Everything the first two header bytes decide. The checks run in one fixed
// order whatever the split of the input, so any split reports the same error.
constexpr FrameError check_frame_start(uint8_t b0, uint8_t b1, Opcode open_message, bool allow_rsv1,
                                       bool require_mask) noexcept {
  const uint8_t op = b0 & 0x0f;
  const bool control = (op & 0x8) != 0;
  // §5.2: RSV2 and RSV3 mean nothing without an extension that defines them,
  // and windlass negotiates none that does.
  if ((b0 & 0x30) != 0) return FrameError::reserved_bits;
  // RFC 7692 §6: RSV1 is permessage-deflate's "compressed" bit, set only on
  // the first frame of a data message, never on control or continuation
  // frames, and only when the extension was negotiated (§5.2 otherwise).
  if ((b0 & 0x40) != 0 && (!allow_rsv1 || control || op == 0)) {
    return FrameError::reserved_bits;
  }
  // §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
  if (op > 0x2 && op < 0x8) return FrameError::unknown_opcode;
  if (op > 0xA) return FrameError::unknown_opcode;
  // §5.1: "a client MUST mask all frames that it sends to the server".
  if (require_mask && (b1 & 0x80) == 0) return FrameError::unmasked_frame;
  if (control) {
    // §5.5: "All control frames MUST ... NOT be fragmented."
    if ((b0 & 0x80) == 0) return FrameError::fragmented_control;
    // §5.5: "All control frames MUST have a payload length of 125 bytes or
    // less"; 126 and 127 announce an extended length, so they fail too.
    if ((b1 & 0x7f) > kMaxControlPayload) return FrameError::control_too_long;
  } else if (op == 0) {
    // §5.4: a continuation frame only continues a fragmented message.
    if (open_message == Opcode::continuation) return FrameError::unexpected_continuation;
  } else if (open_message != Opcode::continuation) {
    // §5.4: fragments of one message are not interleaved with another's.
    return FrameError::expected_continuation;
  }
  return FrameError::none;
}

inline bool mask_is_zero(const uint8_t mask[4]) noexcept {
  return (mask[0] | mask[1] | mask[2] | mask[3]) == 0;
}

}  // namespace frame_detail

template <class Sink>
DecodeResult FrameDecoder::feed(uint8_t* data, size_t len, Sink& sink) {
  enum class Step : uint8_t { go, stop, error };
  size_t pos = 0;

  // Once failed, later calls keep reporting the same error.
  auto fail = [&](FrameError e) {
    state_ = State::failed;
    error_ = e;
    sink.on_error(e);
    return Step::error;
  };

  // Parses a complete header at `h` (validated by check_frame_start) and sets
  // up the frame and, for a first data frame, the message.
  auto start_frame = [&](const uint8_t* h) -> FrameError {
    uint64_t length = h[1] & 0x7f;
    size_t at = 2;
    if (length == 126) {
      length = (static_cast<uint64_t>(h[2]) << 8) | h[3];
      at = 4;
    } else if (length == 127) {
      length = 0;
      for (size_t i = 0; i < 8; ++i) length = (length << 8) | h[2 + i];
      at = 10;
      // §5.2: "the most significant bit MUST be 0".
      if ((length >> 63) != 0) return FrameError::length_msb_set;
    }
    if ((h[1] & 0x80) != 0) {
      std::memcpy(mask_, h + at, 4);
    } else {
      std::memset(mask_, 0, 4);
    }
    fin_ = (h[0] & 0x80) != 0;
    opcode_ = static_cast<Opcode>(h[0] & 0x0f);
    remaining_ = length;
    mask_offset_ = 0;
    if (is_control(opcode_)) {
      control_len_ = 0;
      state_ = State::control_payload;
      return FrameError::none;
    }
    if (opcode_ != Opcode::continuation) {
      message_opcode_ = opcode_;
      message_compressed_ = (h[0] & 0x40) != 0;
      message_started_ = false;
      message_size_ = 0;
      utf8_.reset();
    }
    // The limit is checked against the announced length, before a single
    // payload byte reaches the sink, so the layer above never has to buffer
    // (or allocate for) a message it is going to refuse.
    const uint64_t max = max_message_size_;
    if (message_size_ > max || length > max - message_size_) return FrameError::message_too_big;
    message_size_ += length;
    state_ = State::payload;
    return FrameError::none;
  };

  // Delivers `n` payload bytes of the current data frame at `p` (n may be 0
  // for an empty frame). All decoder state is brought up to date before the
  // sink runs, so a sink that stops decoding leaves an exact position.
  auto data_step = [&](uint8_t* p, size_t n) -> Step {
    const Opcode op = message_opcode_;
    const bool compressed = message_compressed_;
    // §8.1: text must be UTF-8. Checked per chunk and across frames, so it
    // fails at the first bad byte; compressed text is checked after inflating.
    const bool check_utf8 = op == Opcode::text && !compressed;
    // Unmasking tells, in the same pass, whether the chunk is all ASCII;
    // ASCII at a code point boundary cannot change the validator's state.
    bool ascii = false;
    if (n != 0 && !frame_detail::mask_is_zero(mask_)) {
      if (check_utf8 && utf8_.complete()) {
        ascii = apply_mask_is_ascii(p, n, mask_, mask_offset_);
      } else {
        apply_mask(p, n, mask_, mask_offset_);
      }
    }
    mask_offset_ = static_cast<uint8_t>((mask_offset_ + n) & 3);
    remaining_ -= n;
    const bool frame_done = remaining_ == 0;
    const bool last = frame_done && fin_;
    if (check_utf8 && !ascii) {
      if (!utf8_.feed(p, n)) return fail(FrameError::invalid_utf8);
      if (last && !utf8_.complete()) return fail(FrameError::invalid_utf8);
    }
    if (frame_done) state_ = State::header;
    // An empty frame that does not end its message adds nothing to it.
    if (n == 0 && !last) return Step::go;
    const bool first = !message_started_;
    if (last) {
      message_opcode_ = Opcode::continuation;
      message_compressed_ = false;
      message_started_ = false;
      message_size_ = 0;
    } else {
      message_started_ = true;
    }
    return sink.on_data(op, compressed, p, n, first, last) ? Step::go : Step::stop;
  };

  // Handles a complete, unmasked control payload.
  auto control_step = [&](const uint8_t* p, size_t n) -> Step {
    switch (opcode_) {
      case Opcode::ping: state_ = State::header; return sink.on_ping(p, n) ? Step::go : Step::stop;
      case Opcode::pong: state_ = State::header; return sink.on_pong(p, n) ? Step::go : Step::stop;
      default: break;
    }
    ClosePayload close;
    switch (parse_close_payload(std::string_view(reinterpret_cast<const char*>(p), n), close)) {
      case ClosePayloadError::none: break;
      case ClosePayloadError::one_byte: return fail(FrameError::close_one_byte);
      case ClosePayloadError::invalid_code: return fail(FrameError::close_invalid_code);
      case ClosePayloadError::invalid_utf8: return fail(FrameError::close_invalid_utf8);
    }
    // §5.5.1: after a close frame the peer sends no more data frames, and
    // whatever it does send is ignored.
    state_ = State::closed;
    return sink.on_close(close.code, close.reason.data(), close.reason.size()) ? Step::go : Step::stop;
  };

  for (;;) {
    Step step = Step::go;
    switch (state_) {
      case State::closed: return {len, FrameError::none};

      case State::failed: return {0, error_};

      case State::header: {
        if (pos == len) return {pos, FrameError::none};
        const uint8_t* h = nullptr;
        const size_t avail = len - pos;
        if (header_len_ == 0 && avail >= 6 && message_opcode_ == Opcode::continuation) {
          // The common case, in one step: a whole small message in one
          // masked frame (FIN, no RSV bits, text or binary, 7-bit length)
          // entirely in the buffer. Everything the general path would check
          // is implied by that shape, except the size limit and UTF-8.
          const uint8_t b0 = data[pos];
          const uint8_t b1 = data[pos + 1];
          const size_t n = b1 & 0x7f;
          const uint8_t op = b0 & 0x0f;
          if ((b0 & 0xf0) == 0x80 && (op == 0x1 || op == 0x2) && (b1 & 0x80) != 0 && n < 126 &&
              avail - 6 >= n && n <= max_message_size_) {
            uint8_t* p = data + pos + 6;
            const bool ascii = apply_mask_is_ascii(p, n, data + pos + 2, 0);
            pos += 6 + n;
            if (op == 0x1 && !ascii && !is_valid_utf8(std::string_view(reinterpret_cast<char*>(p), n))) {
              fail(FrameError::invalid_utf8);
              return {pos, error_};
            }
            if (!sink.on_data(static_cast<Opcode>(op), false, p, n, true, true))
              return {pos, FrameError::none};
            break;
          }
        }
        if (header_len_ == 0 && avail >= 2 && avail >= frame_detail::header_size(data[pos + 1])) {
          // The whole header is here: read it in place.
          const FrameError e =
              frame_detail::check_frame_start(data[pos], data[pos + 1], message_opcode_, allow_rsv1_, require_mask_);
          if (e != FrameError::none) {
            fail(e);
            return {pos, e};
          }
          h = data + pos;
          pos += frame_detail::header_size(data[pos + 1]);
        } else {
          // The header is split across reads: gather it in header_, checking
          // the first two bytes as soon as they are both here.
          const size_t had = header_len_;
          while (header_len_ < 2 && pos < len) header_[header_len_++] = data[pos++];
          if (header_len_ < 2) return {pos, FrameError::none};
          if (had < 2) {
            const FrameError e =
                frame_detail::check_frame_start(header_[0], header_[1], message_opcode_, allow_rsv1_, require_mask_);
            if (e != FrameError::none) {
              fail(e);
              return {pos, e};
            }
          }
          const size_t need = frame_detail::header_size(header_[1]);
          const size_t take = need - header_len_ < len - pos ? need - header_len_ : len - pos;
          std::memcpy(header_ + header_len_, data + pos, take);
          header_len_ = static_cast<uint8_t>(header_len_ + take);
          pos += take;
          if (header_len_ < need) return {pos, FrameError::none};
          header_len_ = 0;
          h = header_;
        }
        const FrameError e = start_frame(h);
        if (e != FrameError::none) {
          fail(e);
          return {pos, e};
        }
        // An empty frame is complete as soon as its header is: handle it now,
        // even if the buffer ends here.
        if (remaining_ == 0) {
          step = state_ == State::control_payload ? control_step(data + pos, 0) : data_step(data + pos, 0);
        }
        break;
      }

      case State::payload: {
        if (pos == len) return {pos, FrameError::none};
        const size_t n = remaining_ < len - pos ? static_cast<size_t>(remaining_) : len - pos;
        uint8_t* p = data + pos;
        pos += n;
        step = data_step(p, n);
        break;
      }

      case State::control_payload: {
        if (pos == len) return {pos, FrameError::none};
        const size_t avail = len - pos;
        if (control_len_ == 0 && avail >= remaining_) {
          // The whole payload is here: unmask and deliver it in place.
          const auto n = static_cast<size_t>(remaining_);
          uint8_t* p = data + pos;
          if (!frame_detail::mask_is_zero(mask_)) apply_mask(p, n, mask_, 0);
          pos += n;
          remaining_ = 0;
          step = control_step(p, n);
        } else {
          // Split across reads: gather it in control_ (at most 125 bytes,
          // §5.5) and unmask there.
          const size_t n = remaining_ < avail ? static_cast<size_t>(remaining_) : avail;
          if (!control_) control_ = std::make_unique<uint8_t[]>(kMaxControlPayload);
          uint8_t* const buf = control_.get();
          std::memcpy(buf + control_len_, data + pos, n);
          if (!frame_detail::mask_is_zero(mask_)) apply_mask(buf + control_len_, n, mask_, control_len_);
          control_len_ = static_cast<uint8_t>(control_len_ + n);
          remaining_ -= n;
          pos += n;
          if (remaining_ == 0) {
            step = control_step(buf, control_len_);
            control_.reset();  // the sink has copied what it keeps
          }
        }
        break;
      }
    }
    if (step == Step::stop) return {pos, FrameError::none};
    if (step == Step::error) return {pos, error_};
  }
}

}  // namespace windlass::proto
