// Shared helpers for the frame decoder tests: a frame builder written
// independently of the encoder under test, a sink that records what the
// decoder reports, and drivers that feed one input whole, byte by byte, in
// seeded random splits and with a sink that keeps stopping the decoder.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proto/ws_frame_decoder.hpp"

namespace windlass::proto::test {

using Bytes = std::string;
using MaskKey = std::array<uint8_t, 4>;

// The masking key of the examples in RFC 6455 §5.7.
inline constexpr MaskKey kRfcKey = {0x37, 0xfa, 0x21, 0x3d};

inline Bytes bytes(std::initializer_list<int> list) {
  Bytes out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

// A frame with an arbitrary first byte (FIN, RSV and opcode bits as given),
// the minimal length encoding, and the payload masked with `key` when
// `masked`. Deliberately does not use encode_frame_header or apply_mask.
inline Bytes raw_frame(uint8_t b0, std::string_view payload, bool masked = true, MaskKey key = kRfcKey) {
  Bytes out;
  out.push_back(static_cast<char>(b0));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  if (masked) {
    for (uint8_t k : key) out.push_back(static_cast<char>(k));
  }
  for (size_t i = 0; i < payload.size(); ++i) {
    const auto b = static_cast<uint8_t>(payload[i]);
    out.push_back(static_cast<char>(masked ? b ^ key[i % 4] : b));
  }
  return out;
}

inline uint8_t first_byte(Opcode op, bool fin, bool rsv1 = false) {
  return static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<uint8_t>(op));
}

// A masked frame as a client sends it.
inline Bytes client_frame(Opcode op, std::string_view payload, bool fin = true, bool rsv1 = false,
                          MaskKey key = kRfcKey) {
  return raw_frame(first_byte(op, fin, rsv1), payload, true, key);
}

// An unmasked frame as a server sends it.
inline Bytes server_frame(Opcode op, std::string_view payload, bool fin = true) {
  return raw_frame(first_byte(op, fin), payload, false);
}

inline Bytes close_body(uint16_t code, std::string_view reason = {}) {
  Bytes out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xff));
  out.append(reason);
  return out;
}

struct Event {
  enum class Kind { message, ping, pong, close, error };
  Kind kind = Kind::message;
  Opcode opcode = Opcode::continuation;  // message only
  bool compressed = false;               // message only
  Bytes payload;                         // message, ping and pong payloads; close reason
  uint16_t code = 0;                     // close only
  FrameError error = FrameError::none;   // error only

  bool operator==(const Event&) const = default;

  static Event message(Opcode op, std::string_view p, bool compressed = false) {
    Event e;
    e.opcode = op;
    e.payload = Bytes(p);
    e.compressed = compressed;
    return e;
  }
  static Event text(std::string_view p) { return message(Opcode::text, p); }
  static Event binary(std::string_view p) { return message(Opcode::binary, p); }
  static Event ping(std::string_view p) {
    Event e;
    e.kind = Kind::ping;
    e.payload = Bytes(p);
    return e;
  }
  static Event pong(std::string_view p) {
    Event e = ping(p);
    e.kind = Kind::pong;
    return e;
  }
  static Event close(uint16_t code, std::string_view reason = {}) {
    Event e;
    e.kind = Kind::close;
    e.code = code;
    e.payload = Bytes(reason);
    return e;
  }
  static Event failure(FrameError err) {
    Event e;
    e.kind = Kind::error;
    e.error = err;
    return e;
  }
};

inline std::ostream& operator<<(std::ostream& os, const Event& e) {
  static constexpr const char* kKinds[] = {"message", "ping", "pong", "close", "error"};
  os << kKinds[static_cast<int>(e.kind)];
  switch (e.kind) {
    case Event::Kind::message:
      os << "(op=" << static_cast<int>(e.opcode) << (e.compressed ? ", compressed" : "") << ", "
         << e.payload.size() << " bytes)";
      break;
    case Event::Kind::close: os << "(" << e.code << ", \"" << e.payload << "\")"; break;
    case Event::Kind::error: os << "(" << describe(e.error) << ")"; break;
    default: os << "(" << e.payload.size() << " bytes)"; break;
  }
  return os;
}

// Records events, joining the chunks of each data message, and checks the
// chunk contract of the sink on the way: `first` exactly on a message's
// first chunk, a stable opcode, and nothing after an error.
class RecordingSink {
 public:
  std::vector<Event> events;
  int error_calls = 0;
  int callbacks = 0;
  int data_calls = 0;
  // Return false from every stop_every-th callback (0: never).
  int stop_every = 0;

  bool on_data(Opcode op, bool compressed, uint8_t* chunk, size_t len, bool first, bool last) {
    EXPECT_EQ(error_calls, 0) << "data after an error";
    EXPECT_TRUE(op == Opcode::text || op == Opcode::binary);
    EXPECT_EQ(first, !in_message_) << "first must mark exactly the first chunk of a message";
    if (!first) {
      EXPECT_EQ(op, open_.opcode);
      EXPECT_EQ(compressed, open_.compressed);
    } else {
      open_ = Event::message(op, {}, compressed);
    }
    EXPECT_TRUE(len != 0 || last) << "only a last chunk may be empty";
    open_.payload.append(reinterpret_cast<const char*>(chunk), len);
    in_message_ = !last;
    if (last) events.push_back(open_);
    ++data_calls;
    return proceed();
  }
  bool on_ping(const uint8_t* p, size_t len) {
    events.push_back(Event::ping(std::string_view(reinterpret_cast<const char*>(p), len)));
    return proceed();
  }
  bool on_pong(const uint8_t* p, size_t len) {
    events.push_back(Event::pong(std::string_view(reinterpret_cast<const char*>(p), len)));
    return proceed();
  }
  bool on_close(uint16_t code, const char* reason, size_t len) {
    events.push_back(Event::close(code, std::string_view(reason, len)));
    return proceed();
  }
  void on_error(FrameError e) {
    ++error_calls;
    // A message cut short by an error is dropped: how much of it reached
    // the sink depends on how the input was split.
    in_message_ = false;
    events.push_back(Event::failure(e));
  }

 private:
  bool proceed() { return stop_every == 0 || ++callbacks % stop_every != 0; }

  Event open_;
  bool in_message_ = false;
};

// Cut points [0 < c1 < c2 < ... < len] describing how to split an input.
using Split = std::vector<size_t>;

inline Split whole(size_t len) {
  return {len};
}

inline Split byte_by_byte(size_t len) {
  Split s;
  for (size_t i = 1; i <= len; ++i) s.push_back(i);
  if (s.empty()) s.push_back(0);
  return s;
}

inline Split random_split(size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  Split s;
  if (len > 0) {
    // Mix short and long pieces: most bugs hide in 1-3 byte pieces, but
    // long ones exercise the in-place paths.
    std::uniform_int_distribution<size_t> pieces(1, std::min<size_t>(len, 12));
    std::uniform_int_distribution<size_t> at(1, len);
    const size_t n = pieces(rng);
    for (size_t i = 0; i + 1 < n; ++i) s.push_back(at(rng));
  }
  s.push_back(len);
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

struct DecodeRun {
  std::vector<Event> events;
  FrameError error = FrameError::none;
};

// Feeds `input` cut at `split`, each piece in its own exactly sized buffer
// (so ASan sees any read past a piece). When the sink stops the decoder,
// feeds the rest of the piece again, as a server would on its next turn.
inline DecodeRun decode(const Bytes& input, const Split& split, DecoderOptions options = {},
                        int stop_every = 0) {
  FrameDecoder decoder(options);
  RecordingSink sink;
  sink.stop_every = stop_every;
  DecodeRun run;
  size_t begin = 0;
  for (size_t end : split) {
    std::vector<uint8_t> piece(input.begin() + static_cast<std::ptrdiff_t>(begin),
                               input.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
    size_t off = 0;
    for (;;) {
      const size_t left = piece.size() - off;
      const bool was_failed = decoder.failed();
      const DecodeResult r = decoder.feed(piece.data() + off, left, sink);
      EXPECT_LE(r.consumed, left);
      if (r.error != FrameError::none) {
        EXPECT_TRUE(decoder.failed());
        if (was_failed) {
          EXPECT_EQ(r.consumed, 0u) << "a failed decoder consumes nothing";
        }
        if (run.error == FrameError::none) run.error = r.error;
        EXPECT_EQ(r.error, run.error) << "a failed decoder keeps reporting its error";
        break;
      }
      off += r.consumed;
      if (off == piece.size()) break;
      // Only a stopping sink may leave bytes unconsumed, and not forever.
      EXPECT_NE(stop_every, 0) << "consumed less than offered without an error";
      if (stop_every == 0 || r.consumed == 0) break;
    }
  }
  EXPECT_LE(sink.error_calls, 1) << "on_error must be called once";
  EXPECT_EQ(sink.error_calls == 1, run.error != FrameError::none);
  run.events = std::move(sink.events);
  return run;
}

// The heart of every decoder test: the same events, whatever the split and
// however often the sink stops the decoder.
inline void expect_events(const Bytes& input, const std::vector<Event>& expected,
                          DecoderOptions options = {}) {
  const FrameError expected_error = !expected.empty() && expected.back().kind == Event::Kind::error
                                        ? expected.back().error
                                        : FrameError::none;
  auto check = [&](const Split& split, const char* how, int stop_every) {
    SCOPED_TRACE(::testing::Message()
                 << how << " (" << split.size() << " pieces, stop every " << stop_every << ")");
    const DecodeRun run = decode(input, split, options, stop_every);
    EXPECT_EQ(run.events, expected);
    EXPECT_EQ(run.error, expected_error);
  };
  check(whole(input.size()), "whole", 0);
  check(byte_by_byte(input.size()), "byte by byte", 0);
  for (uint32_t seed = 1; seed <= 8; ++seed) check(random_split(input.size(), seed), "random", 0);
  for (int stop : {1, 2, 3}) {
    check(whole(input.size()), "whole, stopping", stop);
    check(random_split(input.size(), 100u + static_cast<uint32_t>(stop)), "random, stopping", stop);
  }
}

}  // namespace windlass::proto::test
