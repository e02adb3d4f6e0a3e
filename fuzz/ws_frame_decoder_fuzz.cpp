// libFuzzer target for FrameDecoder (RFC 6455 §5).
//
// Two properties per input:
//  1. Split equivalence. The input (after two option bytes) is decoded
//     whole, cut at a point taken from the data, byte by byte, and with a
//     sink that stops the decoder every few callbacks; all four must report
//     the same events and the same error.
//  2. Round trip. The same bytes are read as a recipe for a valid stream of
//     client frames, built with encode_frame_header and apply_mask; decoding
//     it must give back exactly the messages and control frames put in.
// Any violation traps, so libFuzzer and the replay build both stop on it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "proto/ws_frame.hpp"
#include "proto/ws_frame_decoder.hpp"

namespace {

using windlass::proto::apply_mask;
using windlass::proto::DecodeResult;
using windlass::proto::DecoderOptions;
using windlass::proto::encode_frame_header;
using windlass::proto::frame_header_size;
using windlass::proto::FrameDecoder;
using windlass::proto::FrameError;
using windlass::proto::is_valid_utf8;
using windlass::proto::kMaxFrameHeader;
using windlass::proto::Opcode;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// One event as the layer above sees it: data chunks joined per message.
struct Event {
  char kind;  // 'm' message, 'i' ping, 'o' pong, 'c' close, 'e' error
  uint8_t opcode = 0;
  bool compressed = false;
  uint16_t code = 0;
  std::string payload;
  bool operator==(const Event&) const = default;
};

class Sink {
 public:
  std::vector<Event> events;
  int stop_every = 0;
  int errors = 0;

  bool on_data(Opcode op, bool compressed, uint8_t* chunk, size_t len, bool first, bool last) {
    check(errors == 0);
    check(op == Opcode::text || op == Opcode::binary);
    check(first == !open_);
    check(len != 0 || last);
    if (first) {
      current_ = Event{'m', static_cast<uint8_t>(op), compressed, 0, {}};
    } else {
      check(current_.opcode == static_cast<uint8_t>(op) && current_.compressed == compressed);
    }
    current_.payload.append(reinterpret_cast<const char*>(chunk), len);
    // Text that is not compressed was validated before delivery (§8.1).
    if (op == Opcode::text && !compressed && last) check(is_valid_utf8(current_.payload));
    open_ = !last;
    if (last) events.push_back(current_);
    return proceed();
  }
  bool on_ping(const uint8_t* p, size_t len) {
    check(len <= windlass::proto::kMaxControlPayload);
    events.push_back(Event{'i', 0, false, 0, std::string(reinterpret_cast<const char*>(p), len)});
    return proceed();
  }
  bool on_pong(const uint8_t* p, size_t len) {
    check(len <= windlass::proto::kMaxControlPayload);
    events.push_back(Event{'o', 0, false, 0, std::string(reinterpret_cast<const char*>(p), len)});
    return proceed();
  }
  bool on_close(uint16_t code, const char* reason, size_t len) {
    check(code == 1005 || windlass::proto::is_valid_wire_close_code(code));
    events.push_back(Event{'c', 0, false, code, std::string(reason, len)});
    return proceed();
  }
  void on_error(FrameError e) {
    ++errors;
    check(errors == 1);
    check(e != FrameError::none);
    // The part of a message that reached the sink before an error depends
    // on the split, so it is not compared.
    open_ = false;
    events.push_back(Event{'e', static_cast<uint8_t>(e), false, 0, {}});
  }

 private:
  bool proceed() { return stop_every == 0 || ++calls_ % stop_every != 0; }
  Event current_{'m', 0, false, 0, {}};
  bool open_ = false;
  int calls_ = 0;
};

struct Run {
  std::vector<Event> events;
  FrameError error = FrameError::none;
  bool operator==(const Run&) const = default;
};

// Decodes `input` in pieces ending at each of `cuts` (ascending, last =
// size), each piece copied into its own exactly sized buffer.
Run decode(const std::vector<uint8_t>& input, const std::vector<size_t>& cuts, const DecoderOptions& options,
           int stop_every) {
  FrameDecoder decoder(options);
  Sink sink;
  sink.stop_every = stop_every;
  Run run;
  size_t begin = 0;
  for (size_t end : cuts) {
    std::vector<uint8_t> piece(input.begin() + static_cast<std::ptrdiff_t>(begin),
                               input.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
    size_t off = 0;
    while (true) {
      const bool was_failed = decoder.failed();
      const size_t left = piece.size() - off;
      const DecodeResult r = decoder.feed(piece.data() + off, left, sink);
      check(r.consumed <= left);
      if (r.error != FrameError::none) {
        check(decoder.failed());
        if (was_failed) check(r.consumed == 0 && r.error == run.error);
        run.error = r.error;
        break;
      }
      check(!decoder.failed());
      off += r.consumed;
      if (off == piece.size()) break;
      // Only a stopping sink may leave input unconsumed, and each stop
      // follows at least one consumed byte.
      check(stop_every != 0 && r.consumed != 0);
    }
    if (decoder.closed()) check(run.error == FrameError::none);
  }
  check(sink.errors == (run.error == FrameError::none ? 0 : 1));
  run.events = std::move(sink.events);
  return run;
}

std::vector<size_t> whole(size_t n) {
  return {n};
}

std::vector<size_t> every(size_t n, size_t step) {
  std::vector<size_t> cuts;
  for (size_t i = step; i < n; i += step) cuts.push_back(i);
  cuts.push_back(n);
  return cuts;
}

void split_equivalence(const uint8_t* data, size_t size) {
  if (size < 3) return;
  DecoderOptions options;
  options.require_mask = (data[0] & 1) == 0;
  options.allow_rsv1 = (data[0] & 2) != 0;
  // A small limit now and then, so message_too_big is reachable.
  if ((data[0] & 4) != 0) options.max_message_size = data[0] >> 3;
  const size_t cut_seed = data[1];
  const std::vector<uint8_t> input(data + 2, data + size);
  const size_t n = input.size();

  const Run reference = decode(input, whole(n), options, 0);
  const size_t cut = n == 0 ? 0 : (cut_seed * 257 + data[size - 1]) % (n + 1);
  std::vector<size_t> two = {cut, n};
  if (cut == 0 || cut == n) two = {n};
  check(decode(input, two, options, 0) == reference);
  check(decode(input, every(n, 1), options, 0) == reference);
  check(decode(input, every(n, 1 + cut_seed % 13), options, 1 + data[0] % 3) == reference);
}

// A tiny generator so payloads can be longer than the fuzz input.
struct Lcg {
  uint32_t s;
  uint8_t next() {
    s = s * 1664525u + 1013904223u;
    return static_cast<uint8_t>(s >> 24);
  }
};

void append_frame(std::vector<uint8_t>& out, Opcode op, const std::string& payload, bool fin, bool rsv1,
                  Lcg& rng) {
  const uint8_t mask[4] = {rng.next(), rng.next(), rng.next(), rng.next()};
  uint8_t header[kMaxFrameHeader];
  const size_t h = encode_frame_header(header, op, payload.size(), fin, rsv1, mask);
  check(h == frame_header_size(payload.size(), true));
  out.insert(out.end(), header, header + h);
  const size_t at = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  // Mask in two pieces at a data-derived point, to cover key offsets.
  const size_t part = payload.empty() ? 0 : rng.next() % (payload.size() + 1);
  apply_mask(out.data() + at, part, mask, 0);
  apply_mask(out.data() + at + part, payload.size() - part, mask, part);
}

void round_trip(const uint8_t* data, size_t size) {
  if (size < 2) return;
  Lcg rng{static_cast<uint32_t>(size) * 2654435761u};
  std::vector<uint8_t> stream;
  std::vector<Event> expected;
  size_t at = 0;
  auto byte = [&]() -> uint8_t { return at < size ? data[at++] : rng.next(); };
  DecoderOptions options;
  options.allow_rsv1 = (data[0] & 0x80) != 0;
  // Lengths reach the 16-bit and, once per input when the first byte asks
  // for it, the 64-bit encodings (§5.2). Other frames share a budget that
  // keeps an execution fast.
  bool long_frame_done = (data[0] & 0x40) == 0;
  size_t budget = 16 << 10;
  for (int frames = 0; at + 2 <= size && frames < 32; ++frames) {
    const uint8_t ctl = byte();
    size_t len = byte();
    if ((ctl & 0xC0) == 0x40) len = 126 + len * 5;
    if ((ctl & 0xC0) == 0xC0 && !long_frame_done) {
      len = 65536 + len;
      long_frame_done = true;
    } else {
      if (len > budget) len = budget;
      budget -= len;
    }
    std::string payload(len, '\0');
    for (auto& c : payload) c = static_cast<char>(at < size ? data[at++] : rng.next());
    const int kind = ctl & 3;
    if (kind >= 2) {
      payload.resize(payload.size() % (windlass::proto::kMaxControlPayload + 1));
      const Opcode op = kind == 2 ? Opcode::ping : Opcode::pong;
      append_frame(stream, op, payload, true, false, rng);
      expected.push_back(Event{kind == 2 ? 'i' : 'o', 0, false, 0, payload});
      continue;
    }
    const bool compressed = options.allow_rsv1 && (ctl & 0x20) != 0;
    const Opcode op = kind == 0 ? Opcode::text : Opcode::binary;
    if (op == Opcode::text && !compressed && !is_valid_utf8(payload)) {
      for (auto& c : payload) c = static_cast<char>(c & 0x7f);
    }
    // Fragment the message at data-derived points, possibly inside a code
    // point, with a ping between fragments now and then (§5.4).
    const size_t fragments = 1 + ((ctl >> 2) & 3);
    size_t done = 0;
    std::vector<Event> pings;
    for (size_t f = 0; f < fragments; ++f) {
      const bool last = f + 1 == fragments;
      const size_t take = last ? payload.size() - done : rng.next() % (payload.size() - done + 1);
      append_frame(stream, f == 0 ? op : Opcode::continuation, payload.substr(done, take), last,
                   f == 0 && compressed, rng);
      done += take;
      if (!last && (ctl & 0x10) != 0) {
        append_frame(stream, Opcode::ping, "p", true, false, rng);
        pings.push_back(Event{'i', 0, false, 0, "p"});
      }
    }
    expected.insert(expected.end(), pings.begin(), pings.end());
    expected.push_back(Event{'m', static_cast<uint8_t>(op), compressed, 0, payload});
  }
  if ((data[0] & 1) != 0) {
    uint8_t body[windlass::proto::kMaxControlPayload];
    const std::string reason = "done";
    const size_t n = windlass::proto::build_close_payload(1000, reason, body);
    append_frame(stream, Opcode::close, std::string(reinterpret_cast<char*>(body), n), true, false, rng);
    expected.push_back(Event{'c', 0, false, 1000, reason});
  }

  // Long streams get proportionally longer pieces, so one execution stays
  // at a few hundred feeds.
  const size_t n = stream.size();
  const size_t spread = n > 4096 ? n / 256 : 0;
  const Run want{expected, FrameError::none};
  check(decode(stream, whole(n), options, 0) == want);
  check(decode(stream, every(n, 1 + data[1] % 61 + spread), options, 0) == want);
  if (n <= 4096) check(decode(stream, every(n, 1), options, 0) == want);
  check(decode(stream, every(n, 1 + data[1] % 7 + spread), options, 2) == want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  split_equivalence(data, size);
  round_trip(data, size);
  return 0;
}
