// libFuzzer target for the HTTP/1.1 request-head parser and the handshake
// checks that run on its result. The input is one request's bytes. It is
// parsed whole and again as growing prefixes cut at points derived from the
// data, each prefix in a heap block of exactly its size so a read past
// `buffered` is caught; both must give the same answer and the same fields.
// It runs once with the default limits and once with small limits taken
// from the input, so the size and count limits are reached as well.
// Also built by g++ with replay_main.cpp, so only portable C++ here.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "proto/http1_parser.hpp"
#include "proto/ws_handshake.hpp"

namespace {

using windlass::proto::Http1Parser;
using windlass::proto::HttpError;
using windlass::proto::HttpRequestHead;
using windlass::proto::ParseStatus;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// A view as an offset into its buffer, so views into two copies of the same
// bytes can be compared.
struct Span {
  size_t offset = 0;
  size_t size = 0;
  bool operator==(const Span&) const = default;
};

Span span_of(std::string_view part, std::string_view whole) {
  if (part.empty()) return {};
  // Every view the parser produces lies inside the head it was given.
  check(part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
  return {static_cast<size_t>(part.data() - whole.data()), part.size()};
}

struct Result {
  ParseStatus status = ParseStatus::need_more;
  HttpError error = HttpError::none;
  size_t head_size = 0;
  Span method, target, path, query;
  uint8_t version_minor = 0;
  size_t header_count = 0;
  Span names[HttpRequestHead::kMaxHeaders];
  Span values[HttpRequestHead::kMaxHeaders];

  bool operator==(const Result& o) const {
    if (status != o.status || error != o.error || head_size != o.head_size || !(method == o.method) ||
        !(target == o.target) || !(path == o.path) || !(query == o.query) ||
        version_minor != o.version_minor || header_count != o.header_count) {
      return false;
    }
    for (size_t i = 0; i < header_count; ++i) {
      if (!(names[i] == o.names[i]) || !(values[i] == o.values[i])) return false;
    }
    return true;
  }
};

// Checks the invariants of one answer and records it.
void record(const Http1Parser& p, ParseStatus st, const HttpRequestHead& h, std::string_view buf,
            size_t max_head_size, size_t max_headers, Result& r) {
  r.status = st;
  r.error = p.error();
  check((st == ParseStatus::error) == (r.error != HttpError::none));
  check(windlass::proto::describe(r.error) != nullptr);
  if (st == ParseStatus::error) {
    check(windlass::proto::http_status_for(r.error) >= 400);
    return;
  }
  if (st != ParseStatus::done) return;
  r.head_size = p.head_size();
  check(r.head_size >= 4 && r.head_size <= buf.size() && r.head_size <= max_head_size);
  check(buf[r.head_size - 1] == '\n');
  const std::string_view head = buf.substr(0, r.head_size);
  r.method = span_of(h.method, head);
  r.target = span_of(h.target, head);
  r.path = span_of(h.path, head);
  r.query = span_of(h.query, head);
  r.version_minor = h.version_minor;
  check(!h.method.empty() && !h.target.empty() && !h.path.empty());
  check(h.header_count <= max_headers && h.header_count <= HttpRequestHead::kMaxHeaders);
  r.header_count = h.header_count;
  for (size_t i = 0; i < h.header_count; ++i) {
    r.names[i] = span_of(h.headers[i].name, head);
    r.values[i] = span_of(h.headers[i].value, head);
    check(!h.headers[i].name.empty());
    bool found = false;
    h.header(h.headers[i].name, &found);
    check(found);
  }
}

// Runs the handshake layer on a parsed head; it must not crash, and a
// request it accepts must yield a usable answer.
void exercise_handshake(const HttpRequestHead& h, std::string_view head) {
  windlass::proto::UpgradeRequest u;
  const windlass::proto::HandshakeError e = windlass::proto::validate_upgrade(h, u);
  check(windlass::proto::describe(e) != nullptr);
  const int status = windlass::proto::http_status_for(e);
  check(status == 101 || status == 400 || status == 405 || status == 426);
  if (e != windlass::proto::HandshakeError::none) return;
  check(windlass::proto::wants_websocket(h));
  span_of(u.key, head);
  span_of(u.protocols, head);
  span_of(u.extensions, head);
  span_of(u.origin, head);
  const std::string accept = windlass::proto::compute_accept_key(u.key);
  check(accept.size() == 28);
  const std::string supported[] = {"chat", "superchat", "v2.example"};
  const std::string_view proto = windlass::proto::select_subprotocol(u.protocols, supported);
  check(proto.empty() || proto == "chat" || proto == "superchat" || proto == "v2.example");
  std::string response;
  windlass::proto::build_accept_response(response, accept, proto, u.extensions);
  check(response.size() > 4 && response.compare(response.size() - 4, 4, "\r\n\r\n") == 0);
}

// Parses `input` whole, then as growing exact-size prefixes; both must agree.
void run(std::string_view input, size_t max_head_size, size_t max_headers, uint64_t seed) {
  Result whole;
  {
    Http1Parser p(max_head_size, max_headers);
    HttpRequestHead h;
    const ParseStatus st = p.parse(input, h);
    record(p, st, h, input, max_head_size, max_headers, whole);
    if (st == ParseStatus::done) exercise_handshake(h, input.substr(0, p.head_size()));
    // The answer is kept by later calls.
    check(p.parse(input, h) == st);
  }

  // Up to four cut points from the seed, ascending, then the whole input.
  size_t cuts[5];
  const size_t n = input.size();
  for (size_t i = 0; i < 4; ++i) {
    cuts[i] = n == 0 ? 0 : static_cast<size_t>((seed >> (i * 16)) % (n + 1));
  }
  cuts[4] = n;
  std::sort(cuts, cuts + 5);

  Http1Parser p(max_head_size, max_headers);
  HttpRequestHead h;
  Result split;
  for (size_t len : cuts) {
    const size_t alloc = std::max<size_t>(len, 1);
    std::unique_ptr<char[]> copy(new char[alloc]);
    if (len != 0) std::memcpy(copy.get(), input.data(), len);
    const std::string_view prefix(copy.get(), len);
    const ParseStatus st = p.parse(prefix, h);
    if (st != ParseStatus::need_more || len == n) {
      record(p, st, h, prefix, max_head_size, max_headers, split);
      break;
    }
  }
  check(split == whole);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // FNV-1a of the input: split points and limits that vary with the data
  // but are the same on every run of the same input.
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    hash = (hash ^ data[i]) * 1099511628211ull;
  }

  run(input, 8192, 64, hash);
  const size_t small_head = 16 + static_cast<size_t>(hash % 512);
  const size_t small_count = static_cast<size_t>((hash >> 9) % 8);
  run(input, small_head, small_count, hash * 6364136223846793005ull + 1442695040888963407ull);

  // The list helpers on raw bytes: must not crash, and must agree with a
  // plain reading of their definitions on a simple case.
  const std::string_view token = input.substr(0, std::min<size_t>(size, 8));
  if (windlass::proto::header_has_token(input, token)) check(!token.empty());
  check(windlass::proto::iequals(token, token));
  return 0;
}
