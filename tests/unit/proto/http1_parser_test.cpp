// Tests for the HTTP/1.1 request-head parser. Every input goes through
// parse_every_way(), which feeds it whole, growing byte by byte and growing
// at seeded random split points, each prefix in a heap block of exactly its
// size (so AddressSanitizer catches a read past `buffered`), and expects the
// same outcome from all of them.
#include "proto/http1_parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace windlass::proto {
namespace {

using namespace std::string_literals;

struct Outcome {
  ParseStatus status = ParseStatus::need_more;
  HttpError error = HttpError::none;
  size_t head_size = 0;
  std::string method;
  std::string target;
  std::string path;
  std::string query;
  int version_minor = 0;
  std::vector<std::pair<std::string, std::string>> headers;

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{status=" << static_cast<int>(o.status) << " error=" << describe(o.error)
     << " head_size=" << o.head_size << " method=" << o.method << " target=" << o.target << " path=" << o.path
     << " query=" << o.query << " minor=" << o.version_minor;
  for (const auto& [name, value] : o.headers) os << " [" << name << ": " << value << "]";
  return os << "}";
}

// A copy of a prefix in a block of exactly its size.
struct ExactBuffer {
  explicit ExactBuffer(std::string_view s)
      : bytes(std::make_unique<char[]>(std::max<size_t>(s.size(), 1))), size(s.size()) {
    std::copy(s.begin(), s.end(), bytes.get());
  }
  std::string_view view() const { return {bytes.get(), size}; }
  std::unique_ptr<char[]> bytes;
  size_t size;
};

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// Records what one parse call produced; views are copied out because the
// buffer they point into is freed after the call.
Outcome capture(const Http1Parser& parser, ParseStatus status, const HttpRequestHead& head,
                std::string_view buffer) {
  Outcome o;
  o.status = status;
  o.error = parser.error();
  if (status != ParseStatus::done) return o;
  o.head_size = parser.head_size();
  const std::string_view h = buffer.substr(0, o.head_size);
  EXPECT_TRUE(inside(head.method, h) && inside(head.target, h) && inside(head.path, h) &&
              inside(head.query, h))
      << "a request-line view points outside the head";
  o.method = head.method;
  o.target = head.target;
  o.path = head.path;
  o.query = head.query;
  o.version_minor = head.version_minor;
  for (size_t i = 0; i < head.header_count; ++i) {
    EXPECT_TRUE(inside(head.headers[i].name, h) && inside(head.headers[i].value, h));
    o.headers.emplace_back(head.headers[i].name, head.headers[i].value);
  }
  return o;
}

struct Limits {
  size_t max_head_size = 8192;
  size_t max_headers = 64;
};

Outcome feed_whole(std::string_view input, Limits limits) {
  Http1Parser parser(limits.max_head_size, limits.max_headers);
  HttpRequestHead head;
  const ExactBuffer buf(input);
  const ParseStatus st = parser.parse(buf.view(), head);
  return capture(parser, st, head, buf.view());
}

// Feeds growing prefixes of the given lengths (ascending, the last being
// the whole input) and stops at the first answer other than need_more.
// `decided_at` is the length of the prefix that gave that answer.
Outcome feed_prefixes(std::string_view input, Limits limits, const std::vector<size_t>& cuts,
                      size_t* decided_at = nullptr) {
  Http1Parser parser(limits.max_head_size, limits.max_headers);
  HttpRequestHead head;
  for (size_t len : cuts) {
    const ExactBuffer buf(input.substr(0, len));
    const ParseStatus st = parser.parse(buf.view(), head);
    if (st != ParseStatus::need_more || len == input.size()) {
      if (decided_at != nullptr) *decided_at = len;
      return capture(parser, st, head, buf.view());
    }
  }
  ADD_FAILURE() << "the cuts did not end at the whole input";
  return {};
}

std::vector<size_t> every_length(size_t n) {
  std::vector<size_t> cuts;
  for (size_t len = 0; len <= n; ++len) cuts.push_back(len);
  return cuts;
}

std::vector<size_t> random_cuts(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> pos(0, n);
  std::vector<size_t> cuts(1 + rng() % 6);
  for (size_t& c : cuts) c = pos(rng);
  cuts.push_back(n);
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

// Parses `input` whole, byte by byte and in random splits; all must agree.
// Returns the outcome; `decided_at` gets the shortest prefix that decided.
Outcome parse_every_way(std::string_view input, Limits limits = {}, size_t* decided_at = nullptr) {
  const Outcome whole = feed_whole(input, limits);
  size_t at = 0;
  EXPECT_EQ(feed_prefixes(input, limits, every_length(input.size()), &at), whole)
      << "byte by byte differs from whole";
  for (unsigned seed = 1; seed <= 8; ++seed) {
    EXPECT_EQ(feed_prefixes(input, limits, random_cuts(input.size(), seed)), whole)
        << "random split (seed " << seed << ") differs from whole";
  }
  if (decided_at != nullptr) *decided_at = at;
  return whole;
}

HttpError error_of(std::string_view input, Limits limits = {}) {
  const Outcome o = parse_every_way(input, limits);
  EXPECT_EQ(o.status, o.error == HttpError::none ? o.status : ParseStatus::error);
  return o.error;
}

const std::string kChromiumUpgrade =
    "GET /chat?room=lobby HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://example.com:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

// --- complete heads -------------------------------------------------------

TEST(Http1Parser, parses_minimal_get) {
  const std::string in = "GET / HTTP/1.1\r\n\r\n";
  const Outcome o = parse_every_way(in);
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.method, "GET");
  EXPECT_EQ(o.target, "/");
  EXPECT_EQ(o.path, "/");
  EXPECT_EQ(o.query, "");
  EXPECT_EQ(o.version_minor, 1);
  EXPECT_TRUE(o.headers.empty());
  EXPECT_EQ(o.head_size, in.size());
}

TEST(Http1Parser, parses_chromium_upgrade_request) {
  const Outcome o = parse_every_way(kChromiumUpgrade);
  ASSERT_EQ(o.status, ParseStatus::done) << describe(o.error);
  EXPECT_EQ(o.head_size, kChromiumUpgrade.size());
  EXPECT_EQ(o.method, "GET");
  EXPECT_EQ(o.target, "/chat?room=lobby");
  EXPECT_EQ(o.path, "/chat");
  EXPECT_EQ(o.query, "room=lobby");
  ASSERT_EQ(o.headers.size(), 12u);
  EXPECT_EQ(o.headers[0], std::pair("Host"s, "example.com:8080"s));
  EXPECT_EQ(o.headers[4].second,
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36");
  EXPECT_EQ(o.headers[11],
            std::pair("Sec-WebSocket-Extensions"s, "permessage-deflate; client_max_window_bits"s));
}

TEST(Http1Parser, head_size_stops_at_the_empty_line) {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const Outcome o = parse_every_way(head + "\x81\x85 frame bytes\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.head_size, head.size());
}

TEST(Http1Parser, accepts_bare_lf_line_endings) {
  const Outcome o = parse_every_way("GET /x HTTP/1.1\nHost: a\nUpgrade: websocket\n\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.head_size, 44u);
  ASSERT_EQ(o.headers.size(), 2u);
  EXPECT_EQ(o.headers[1], std::pair("Upgrade"s, "websocket"s));
}

TEST(Http1Parser, accepts_mixed_line_endings) {
  const std::string in = "GET / HTTP/1.1\nHost: a\r\nX: y\n\r\n";
  const Outcome o = parse_every_way(in);
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.head_size, in.size());
  EXPECT_EQ(o.headers.size(), 2u);
}

TEST(Http1Parser, ignores_up_to_four_leading_empty_lines) {
  for (const std::string prefix : {"\r\n", "\n", "\r\n\r\n", "\r\n\n\r\n\n"}) {
    const std::string in = prefix + "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const Outcome o = parse_every_way(in);
    ASSERT_EQ(o.status, ParseStatus::done) << describe(o.error);
    EXPECT_EQ(o.method, "GET");
    EXPECT_EQ(o.head_size, in.size());
  }
}

TEST(Http1Parser, rejects_a_fifth_leading_empty_line) {
  size_t at = 0;
  const Outcome o = parse_every_way("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", {}, &at);
  EXPECT_EQ(o.error, HttpError::bad_request_line);
  EXPECT_EQ(at, 10u);
}

TEST(Http1Parser, needs_more_until_the_empty_line) {
  const std::string in = "GET / HTTP/1.1\r\nHost: a\r\n\r";
  EXPECT_EQ(parse_every_way(in).status, ParseStatus::need_more);
  EXPECT_EQ(parse_every_way("").status, ParseStatus::need_more);
  EXPECT_EQ(parse_every_way("\r").status, ParseStatus::need_more);
}

TEST(Http1Parser, trims_ows_around_values_but_not_inside) {
  const Outcome o = parse_every_way("GET / HTTP/1.1\r\nA: \t x  y \t\r\nB:z\r\nC:   \r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  ASSERT_EQ(o.headers.size(), 3u);
  EXPECT_EQ(o.headers[0].second, "x  y");
  EXPECT_EQ(o.headers[1].second, "z");
  EXPECT_EQ(o.headers[2].second, "");
}

TEST(Http1Parser, accepts_htab_and_obs_text_in_values) {
  const Outcome o = parse_every_way("GET / HTTP/1.1\r\nX: a\tb \xC3\xA9\xFF\x80\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.headers[0].second, "a\tb \xC3\xA9\xFF\x80");
}

TEST(Http1Parser, accepts_every_token_char_in_names_and_methods) {
  const std::string tchars = "!#$%&'*+-.^_`|~09azAZ";
  const Outcome o = parse_every_way(tchars + " / HTTP/1.1\r\n" + tchars + ": v\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.method, tchars);
  EXPECT_EQ(o.headers[0].first, tchars);
}

TEST(Http1Parser, methods_are_tokens_of_any_case) {
  const Outcome o = parse_every_way("get / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.method, "get");
}

// --- versions --------------------------------------------------------------

TEST(Http1Parser, accepts_http10) {
  const Outcome o = parse_every_way("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.version_minor, 0);
}

TEST(Http1Parser, reads_later_1x_minors_as_http11) {
  const Outcome o = parse_every_way("GET / HTTP/1.2\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.version_minor, 2);
  EXPECT_EQ(parse_every_way("GET / HTTP/1.9\r\n\r\n").version_minor, 9);
}

TEST(Http1Parser, rejects_unsupported_version) {
  for (const char* v : {"HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.1"}) {
    size_t at = 0;
    const std::string line = "GET / "s + v + "\r\n";
    const Outcome o = parse_every_way(line + "Host: a\r\n\r\n", {}, &at);
    EXPECT_EQ(o.error, HttpError::unsupported_version) << v;
    EXPECT_EQ(at, line.size()) << "decided when the request line was complete";
  }
  EXPECT_EQ(http_status_for(HttpError::unsupported_version), 505);
}

TEST(Http1Parser, rejects_malformed_version) {
  for (const char* v : {"HTTP/1.1x", "http/1.1", "HTTP/1.", "HTTP/11.1", "HTTP/1,1", "HTTP/a.1", "HTTP/1.a",
                        "HTTP1.1", "", "HTTPS/1.1"}) {
    EXPECT_EQ(error_of("GET / "s + v + "\r\n\r\n"), HttpError::bad_request_line) << v;
  }
}

// --- request line ----------------------------------------------------------

TEST(Http1Parser, rejects_malformed_request_line) {
  for (const char* line : {"GET\r\n", "GET /\r\n", "GET / HTTP/1.1 \r\n", "\r\n\r\n\r\n\r\n\r\n",
                           "GET/ HTTP/1.1\r\n", "garbage with spaces\r\n"}) {
    EXPECT_EQ(error_of(line + "Host: a\r\n\r\n"s), HttpError::bad_request_line) << line;
  }
}

TEST(Http1Parser, rejects_garbage_at_the_first_line_without_waiting_for_the_size_limit) {
  size_t at = 0;
  const Outcome o = parse_every_way("hello\r\nand much more garbage", {}, &at);
  EXPECT_EQ(o.error, HttpError::bad_request_line);
  EXPECT_EQ(at, 7u);
}

TEST(Http1Parser, rejects_a_binary_preamble_at_its_first_byte) {
  size_t at = 0;
  // The first bytes of a TLS ClientHello sent to a plain-text port.
  const Outcome o = parse_every_way("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, {}, &at);
  EXPECT_EQ(o.error, HttpError::bad_request_line);
  EXPECT_EQ(at, 1u);
}

TEST(Http1Parser, rejects_control_bytes_and_non_ascii_in_request_line) {
  for (const std::string& line :
       {"GET /a\0b HTTP/1.1\r\n"s, "GET /a\tb HTTP/1.1\r\n"s, "GET\t/ HTTP/1.1\r\n"s,
        "GET /\x7f HTTP/1.1\r\n"s, "GET /caf\xC3\xA9 HTTP/1.1\r\n"s}) {
    EXPECT_EQ(error_of(line + "\r\n"), HttpError::bad_request_line);
  }
}

TEST(Http1Parser, rejects_bad_method) {
  for (const char* line : {"G(T / HTTP/1.1\r\n", "GE\"T / HTTP/1.1\r\n", "G:T / HTTP/1.1\r\n",
                           " GET / HTTP/1.1\r\n", "GET{} / HTTP/1.1\r\n"}) {
    EXPECT_EQ(error_of(line + "\r\n"s), HttpError::bad_method) << line;
  }
  EXPECT_EQ(http_status_for(HttpError::bad_method), 400);
}

TEST(Http1Parser, rejects_bad_target) {
  for (const char* line :
       {"GET chat HTTP/1.1\r\n", "GET /a b HTTP/1.1\r\n", "GET  / HTTP/1.1\r\n", "GET  HTTP/1.1\r\n",
        "GET * HTTP/1.1\r\n", "GET /a#frag HTTP/1.1\r\n", "GET ftp://host/a HTTP/1.1\r\n",
        "GET http:///a HTTP/1.1\r\n", "GET http:// HTTP/1.1\r\n", "GET http:/a HTTP/1.1\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\n", "GET ?a=b HTTP/1.1\r\n",
        "GET http://user:pw@example.com/ HTTP/1.1\r\n"}) {
    EXPECT_EQ(error_of(line + "Host: a\r\n\r\n"s), HttpError::bad_target) << line;
  }
}

TEST(Http1Parser, splits_origin_form_into_path_and_query) {
  const Outcome a = parse_every_way("GET /a/b?x=1&y=?2 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(a.path, "/a/b");
  EXPECT_EQ(a.query, "x=1&y=?2");
  const Outcome b = parse_every_way("GET /?  HTTP/1.1\r\n\r\n");
  EXPECT_EQ(b.error, HttpError::bad_target);
  const Outcome c = parse_every_way("GET /? HTTP/1.1\r\n\r\n");
  EXPECT_EQ(c.path, "/");
  EXPECT_EQ(c.query, "");
  const Outcome d = parse_every_way("GET //two/slashes HTTP/1.1\r\n\r\n");
  EXPECT_EQ(d.path, "//two/slashes");
}

TEST(Http1Parser, accepts_absolute_form_and_extracts_the_path) {
  const Outcome a = parse_every_way("GET http://example.com:80/chat?x=1 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(a.status, ParseStatus::done);
  EXPECT_EQ(a.target, "http://example.com:80/chat?x=1");
  EXPECT_EQ(a.path, "/chat");
  EXPECT_EQ(a.query, "x=1");
  const Outcome b = parse_every_way("GET HTTPS://example.com HTTP/1.1\r\n\r\n");
  ASSERT_EQ(b.status, ParseStatus::done);
  EXPECT_EQ(b.path, "/");
  EXPECT_EQ(b.query, "");
  const Outcome c = parse_every_way("GET http://example.com?q HTTP/1.1\r\n\r\n");
  ASSERT_EQ(c.status, ParseStatus::done);
  EXPECT_EQ(c.path, "/");
  EXPECT_EQ(c.query, "q");
  const Outcome d = parse_every_way("GET http://example.com/a@b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(d.status, ParseStatus::done);
  EXPECT_EQ(d.path, "/a@b");
}

TEST(Http1Parser, accepts_asterisk_form_only_for_options) {
  const Outcome o = parse_every_way("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.target, "*");
  EXPECT_EQ(o.path, "*");
  EXPECT_EQ(error_of("options * HTTP/1.1\r\n\r\n"), HttpError::bad_target);
}

// --- header fields -----------------------------------------------------------

TEST(Http1Parser, rejects_whitespace_before_colon) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), HttpError::whitespace_before_colon);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), HttpError::whitespace_before_colon);
  EXPECT_EQ(http_status_for(HttpError::whitespace_before_colon), 400);
}

TEST(Http1Parser, rejects_bad_header_name) {
  for (const char* line :
       {"Ho st: a", ": a", "NoColon", "Host@: a", "X(y): a", "\"q\": a", "Caf\xC3\xA9: a", "A\x01: a"}) {
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\n"s + line + "\r\n\r\n"), HttpError::bad_header_name) << line;
  }
}

TEST(Http1Parser, rejects_control_bytes_in_values) {
  for (const std::string& value : {"a\0b"s, "\x01"s, "a\x1f"s, "\x7f"s, "x\x0b y"s}) {
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: " + value + "\r\n\r\n"), HttpError::bad_header_value);
  }
}

TEST(Http1Parser, rejects_a_control_byte_at_any_position_in_a_long_value) {
  const std::string ok = "abcdefghijklmnopqrstuvwxyz \x80\xff~!";
  ASSERT_EQ(parse_every_way("GET / HTTP/1.1\r\nX: " + ok + "\r\n\r\n").status, ParseStatus::done);
  for (const char bad : {'\0', '\x01', '\x1f', '\x7f'}) {
    for (size_t pos = 0; pos < ok.size(); ++pos) {
      std::string value = ok;
      value[pos] = bad;
      EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: " + value + "\r\n\r\n"), HttpError::bad_header_value)
          << "byte " << static_cast<int>(bad) << " at " << pos;
    }
  }
}

TEST(Http1Parser, rejects_obs_fold) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n"), HttpError::obs_fold);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), HttpError::obs_fold);
  // RFC 9112 §2.2: whitespace between the request line and the first field.
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), HttpError::obs_fold);
}

TEST(Http1Parser, rejects_bare_cr) {
  for (const std::string& in : {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"s, "GET / HTTP/1.1\rX: a\r\n\r\n"s,
                                "GET / HTTP/1.1\r\nX: a\r\r\n\r\n"s, "\r\r\nGET / HTTP/1.1\r\n\r\n"s,
                                "GET / HTTP/1.1\r\n\r\r\n"s, "GET /\r HTTP/1.1\r\n\r\n"s}) {
    EXPECT_EQ(error_of(in), HttpError::bare_cr);
  }
}

TEST(Http1Parser, rejects_bare_cr_as_soon_as_the_next_byte_arrives) {
  size_t at = 0;
  const Outcome o = parse_every_way("GET / HTTP/1.1\r\nX: a\rb: c\r\n\r\n", {}, &at);
  EXPECT_EQ(o.error, HttpError::bare_cr);
  EXPECT_EQ(at, 22u);
}

TEST(Http1Parser, reports_the_first_fault_in_byte_order) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX : a\r\nY: \x01\r\n\r\n"), HttpError::whitespace_before_colon);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nY: \x01\r\nX : a\r\n\r\n"), HttpError::bad_header_value);
  // A bare CR is found by the scan, before the fields are checked.
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nX : a\r\nY: \rz\r\n\r\n"), HttpError::bare_cr);
}

// --- limits ------------------------------------------------------------------

TEST(Http1Parser, accepts_a_head_of_exactly_max_head_size) {
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(100, 'v') + "\r\n\r\n";
  const Outcome o = parse_every_way(head + "body", {head.size(), 64});
  ASSERT_EQ(o.status, ParseStatus::done);
  EXPECT_EQ(o.head_size, head.size());
}

TEST(Http1Parser, rejects_head_too_large) {
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(100, 'v') + "\r\n\r\n";
  const Outcome o = parse_every_way(head, {head.size() - 1, 64});
  EXPECT_EQ(o.error, HttpError::head_too_large);
  EXPECT_EQ(http_status_for(HttpError::head_too_large), 431);
}

TEST(Http1Parser, rejects_head_too_large_as_soon_as_the_limit_is_passed) {
  size_t at = 0;
  const std::string in = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'v');
  const Outcome o = parse_every_way(in, {}, &at);
  EXPECT_EQ(o.error, HttpError::head_too_large);
  EXPECT_EQ(at, 8193u);
}

TEST(Http1Parser, rejects_an_endless_request_line_at_the_limit) {
  size_t at = 0;
  const Outcome o = parse_every_way("GET /" + std::string(300, 'a'), {256, 64}, &at);
  EXPECT_EQ(o.error, HttpError::head_too_large);
  EXPECT_EQ(at, 257u);
}

TEST(Http1Parser, rejects_too_many_headers) {
  std::string three = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 3; ++i) three += "H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parse_every_way(three + "\r\n", {8192, 3}).headers.size(), 3u);
  EXPECT_EQ(error_of(three + "H3: v\r\n\r\n", {8192, 3}), HttpError::too_many_headers);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nH: v\r\n\r\n", {8192, 0}), HttpError::too_many_headers);
  EXPECT_EQ(http_status_for(HttpError::too_many_headers), 431);
}

TEST(Http1Parser, clamps_max_headers_to_the_array_size) {
  std::string in = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < HttpRequestHead::kMaxHeaders; ++i) in += "H: v\r\n";
  EXPECT_EQ(parse_every_way(in + "\r\n", {8192, 100000}).headers.size(), HttpRequestHead::kMaxHeaders);
  EXPECT_EQ(error_of(in + "H: v\r\n\r\n", {8192, 100000}), HttpError::too_many_headers);
}

// --- the parser object -------------------------------------------------------

TEST(Http1Parser, keeps_its_answer_after_done_or_error) {
  Http1Parser parser;
  HttpRequestHead head;
  const std::string ok = "GET /a HTTP/1.1\r\n\r\nmore";
  ASSERT_EQ(parser.parse(ok, head), ParseStatus::done);
  EXPECT_EQ(parser.parse(ok, head), ParseStatus::done);
  EXPECT_EQ(parser.head_size(), 19u);
  EXPECT_EQ(head.path, "/a");

  Http1Parser bad;
  ASSERT_EQ(bad.parse("BAD\r\n", head), ParseStatus::error);
  EXPECT_EQ(bad.parse("BAD\r\nGET / HTTP/1.1\r\n\r\n", head), ParseStatus::error);
  EXPECT_EQ(bad.error(), HttpError::bad_request_line);
}

TEST(Http1Parser, reset_starts_a_new_request) {
  Http1Parser parser;
  HttpRequestHead head;
  ASSERT_EQ(parser.parse("BAD\r\n", head), ParseStatus::error);
  parser.reset();
  EXPECT_EQ(parser.error(), HttpError::none);
  ASSERT_EQ(parser.parse("GET /x HTTP/1.1\r\nA: b\r\n\r\n", head), ParseStatus::done);
  EXPECT_EQ(head.path, "/x");
  parser.reset();
  EXPECT_EQ(parser.head_size(), 0u);
  ASSERT_EQ(parser.parse("GET /y HTTP/1.0\r\n\r\n", head), ParseStatus::done);
  EXPECT_EQ(head.header_count, 0u);
  EXPECT_EQ(head.version_minor, 0);
}

TEST(Http1Parser, starts_over_when_given_a_shorter_buffer) {
  Http1Parser parser;
  HttpRequestHead head;
  ASSERT_EQ(parser.parse("GET /long HTTP/1.1\r\nX: y", head), ParseStatus::need_more);
  ASSERT_EQ(parser.parse("GET / HTTP/1.1\r\n\r\n", head), ParseStatus::done);
  EXPECT_EQ(head.path, "/");
}

// --- lookups ---------------------------------------------------------------------

TEST(Http1Parser, header_lookup_is_case_insensitive_and_returns_the_first) {
  Http1Parser parser;
  HttpRequestHead head;
  ASSERT_EQ(parser.parse("GET / HTTP/1.1\r\nsec-websocket-KEY: k1\r\nSec-WebSocket-Key: k2\r\n"
                         "Empty:\r\n\r\n",
                         head),
            ParseStatus::done);
  EXPECT_EQ(head.header("Sec-WebSocket-Key"), "k1");
  EXPECT_EQ(head.header("SEC-WEBSOCKET-KEY"), "k1");
  bool found = false;
  EXPECT_EQ(head.header("empty", &found), "");
  EXPECT_TRUE(found);
  EXPECT_EQ(head.header("Missing", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(head.header("Sec-WebSocket-Ke", &found), "");
  EXPECT_FALSE(found);
}

TEST(Http1Parser, iequals_compares_ascii_case_insensitively) {
  EXPECT_TRUE(iequals("Upgrade", "uPGRADE"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("upgrade", "upgradex"));
  EXPECT_FALSE(iequals("@", "`"));  // 0x40 and 0x60 differ by the case bit but are not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("\xC9", "\xE9"));  // Latin-1 letters are not folded
}

TEST(Http1Parser, header_has_token_finds_list_elements) {
  EXPECT_TRUE(header_has_token("Upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token("keep-alive,Upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token(" \tupgrade\t ", "upgrade"));
  EXPECT_TRUE(header_has_token(",,upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token("upgrade,,", "upgrade"));
  EXPECT_TRUE(header_has_token("a , , upgrade , b", "upgrade"));
  EXPECT_FALSE(header_has_token("upgradex", "upgrade"));
  EXPECT_FALSE(header_has_token("xupgrade", "upgrade"));
  EXPECT_FALSE(header_has_token("up grade", "upgrade"));
  EXPECT_FALSE(header_has_token("keep-alive", "upgrade"));
  EXPECT_FALSE(header_has_token("", "upgrade"));
  EXPECT_FALSE(header_has_token(",, ,", "upgrade"));
  EXPECT_FALSE(header_has_token(",,", ""));
}

TEST(Http1Parser, every_error_has_a_status_and_a_reason) {
  const HttpError all[] = {
      HttpError::bad_request_line,        HttpError::bad_method,      HttpError::bad_target,
      HttpError::unsupported_version,     HttpError::bad_header_name, HttpError::bad_header_value,
      HttpError::whitespace_before_colon, HttpError::obs_fold,        HttpError::bare_cr,
      HttpError::head_too_large,          HttpError::too_many_headers};
  const int want[] = {400, 400, 400, 505, 400, 400, 400, 400, 400, 431, 431};
  for (size_t i = 0; i < std::size(all); ++i) {
    EXPECT_EQ(http_status_for(all[i]), want[i]) << describe(all[i]);
    EXPECT_STRNE(describe(all[i]), describe(HttpError::none));
  }
  EXPECT_EQ(http_status_for(HttpError::none), 0);
}

}  // namespace
}  // namespace windlass::proto
