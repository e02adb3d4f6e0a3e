// libFuzzer target for permessage-deflate (RFC 7692). The first byte picks
// one of three checks, the second configures it, the rest is the data:
//   0  inflate arbitrary bytes as two messages under a small size limit:
//      the output never passes the limit (nor does its buffer), and the
//      result is the same fed whole and split at a data-derived point;
//   1  round trip: Deflater then Inflater, with data-derived window size,
//      level and context takeover, over three messages cut from the data,
//      restores them exactly, fed whole and split;
//   2  negotiate_deflate on the data as a header value: never crashes, an
//      accepted answer is in range, and reading our response back as an
//      offer gives the same answer.
// Plain C++ so g++ compiles it into the replay binary as well.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/deflate.hpp"

namespace {

using windlass::proto::DeflateError;
using windlass::proto::DeflateNegotiation;
using windlass::proto::DeflatePolicy;
using windlass::proto::Deflater;
using windlass::proto::DeflaterConfig;
using windlass::proto::InflateError;
using windlass::proto::Inflater;
using windlass::proto::InflaterConfig;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Inflated {
  std::vector<std::string> messages;
  InflateError error = InflateError::none;
};

// Inflates each payload as one message; every piece of a payload is cut at
// `cut` bytes (0: whole), and each output buffer is checked against the limit.
Inflated inflate_all(const InflaterConfig& config, const std::vector<std::string_view>& payloads,
                     size_t cut) {
  Inflater inflater(config);
  Inflated result;
  for (const std::string_view payload : payloads) {
    std::string out;
    InflateError e = InflateError::none;
    size_t at = 0;
    while (e == InflateError::none && at < payload.size()) {
      const size_t n = cut == 0 ? payload.size() - at : std::min(cut, payload.size() - at);
      e = inflater.feed(payload.substr(at, n), out);
      at += n;
      check(out.size() <= config.max_message_size);
      check(out.capacity() <= std::max<size_t>(config.max_message_size, 30));
    }
    if (e == InflateError::none) e = inflater.finish(out);
    check(out.size() <= config.max_message_size);
    check(out.capacity() <= std::max<size_t>(config.max_message_size, 30));
    if (e != InflateError::none) {
      check(inflater.error() == e);
      result.error = e;
      return result;
    }
    result.messages.push_back(std::move(out));
  }
  return result;
}

void fuzz_inflate(uint8_t setup, std::string_view data) {
  InflaterConfig config;
  config.window_bits = 8 + (setup & 7);
  config.no_context_takeover = (setup & 8) != 0;
  config.max_message_size = size_t{16} << ((setup >> 4) & 7);  // 16 B .. 2 KiB
  const size_t half = data.size() / 2;
  const std::vector<std::string_view> payloads = {data.substr(0, half), data.substr(half)};
  const Inflated whole = inflate_all(config, payloads, 0);
  const size_t cut = 1 + (data.empty() ? size_t{0} : size_t{static_cast<uint8_t>(data[0])} % 17);
  const Inflated split = inflate_all(config, payloads, cut);
  if (split.error != whole.error || split.messages != whole.messages) {
    // zlib checks a back-reference against the window only for what it
    // wrote in earlier calls: one reaching further than the negotiated
    // window (invalid from the sender) is accepted when its target is in
    // the same call's output, refused when it is not. So a message that
    // arrives whole may pass where the same bytes in pieces are refused.
    // That, and nothing else, is allowed: with a window large enough for
    // every reference, the pieces must give what the whole gave.
    InflaterConfig wide = config;
    wide.window_bits = 15;
    const Inflated wide_split = inflate_all(wide, payloads, cut);
    check(config.window_bits < 15);
    check(wide_split.error == whole.error);
    check(wide_split.messages == whole.messages);
  }
}

void fuzz_round_trip(uint8_t setup, std::string_view data) {
  DeflaterConfig dc;
  dc.window_bits = 8 + (setup & 7);
  dc.no_context_takeover = (setup & 8) != 0;
  dc.level = (setup >> 4) % 10;
  dc.mem_level = 1 + (setup >> 4) % 9;
  InflaterConfig ic;
  ic.window_bits = dc.window_bits;
  ic.no_context_takeover = dc.no_context_takeover;
  ic.max_message_size = data.size();
  // Three messages: the data cut in two at a data-derived point, then the
  // data again, which a window with context takeover can refer back to.
  const size_t point = data.empty() ? 0 : static_cast<uint8_t>(data.back()) * data.size() / 256;
  const std::vector<std::string_view> messages = {data.substr(0, point), data.substr(point), data};
  Deflater deflater(dc);
  std::vector<std::string> payloads;
  for (const std::string_view m : messages) {
    std::string out;
    check(deflater.compress(m, out) == DeflateError::none);
    payloads.push_back(std::move(out));
  }
  const std::vector<std::string_view> views(payloads.begin(), payloads.end());
  for (const size_t cut : {size_t{0}, point + 1, size_t{1}}) {
    if (cut == 1 && data.size() > 2048) continue;  // byte by byte only for small inputs
    const Inflated r = inflate_all(ic, views, cut);
    check(r.error == InflateError::none);
    check(r.messages.size() == messages.size());
    for (size_t i = 0; i < messages.size(); ++i) check(r.messages[i] == messages[i]);
  }
}

void fuzz_negotiation(uint8_t setup, std::string_view header) {
  DeflatePolicy policy;
  policy.server_no_context_takeover = (setup & 1) != 0;
  policy.client_no_context_takeover = (setup & 2) != 0;
  policy.server_max_window_bits = 8 + ((setup >> 2) & 7);
  policy.client_max_window_bits = (setup & 0x20) != 0 ? 15 : 8 + ((setup >> 6) & 3) * 2;
  const DeflateNegotiation n = negotiate_deflate(header, policy);
  if (!n.accepted()) {
    check(n.response.empty());
    return;
  }
  check(n.response.rfind("permessage-deflate", 0) == 0);
  check(n.params.server_max_window_bits >= 8 &&
        n.params.server_max_window_bits <= policy.server_max_window_bits);
  check(n.params.client_max_window_bits >= 8 &&
        n.params.client_max_window_bits <= policy.client_max_window_bits);
  check(!policy.server_no_context_takeover || n.params.server_no_context_takeover);
  check(!policy.client_no_context_takeover || n.params.client_no_context_takeover);
  const DeflateNegotiation again = negotiate_deflate(n.response, policy);
  check(again.accepted());
  check(again.params == n.params);
  check(again.response == n.response);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 3) {
    case 0: fuzz_inflate(data[1], rest); break;
    case 1: fuzz_round_trip(data[1], rest); break;
    default: fuzz_negotiation(data[1], rest); break;
  }
  return 0;
}
