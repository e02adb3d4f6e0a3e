// The HTTP/1.1 request-head parser (RFC 9112 §2-§5). See http1_parser.hpp.
//
// Work is split in two passes so that a slow peer costs little. The scan in
// parse() looks at each byte once, across calls, for the end of the head: in
// the request line byte by byte, so that a byte that cannot be there ends the
// request at once, and in the header section a line at a time with memchr.
// It also refuses a bare CR as soon as the byte after it arrives, and checks
// the request line as soon as that line is complete. Only when the whole
// head has arrived does fill_head() walk it a second time to split and check
// the header fields. Both passes read nothing beyond the bytes they are given
// and allocate nothing.
//
// The parser keeps offsets, never pointers, between calls, so the outcome is
// the same whether a head arrives whole or in pieces: every decision depends
// only on the bytes up to the point where it is taken.
#include "proto/http1_parser.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace windlass::proto {

namespace {

// RFC 9112 §2.2: "a server SHOULD ignore at least one empty line (CRLF)
// received prior to the request-line". A few are tolerated for clients that
// add a stray CRLF after a previous body; more than that is not HTTP.
constexpr int kMaxLeadingEmptyLines = 4;

// Byte classes, built at compile time so the hot loops are one table look-up.
enum ByteClass : uint8_t {
  kTchar = 1 << 0,        // RFC 9110 §5.6.2 token character
  kFieldVchar = 1 << 1,   // RFC 9110 §5.5 field-vchar: VCHAR or obs-text
  kRequestLine = 1 << 2,  // may appear in a request line: VCHAR or SP (RFC 9112 §3)
};

constexpr std::array<uint8_t, 256> make_byte_classes() {
  // RFC 9110 §5.6.2: tchar = ALPHA / DIGIT / one of these.
  constexpr std::string_view kTcharPunct = "!#$%&'*+-.^_`|~";
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t bits = 0;
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || (c < 0x80 && kTcharPunct.find(static_cast<char>(c)) != std::string_view::npos)) {
      bits |= kTchar;
    }
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80) bits |= kFieldVchar;
    if (c >= 0x20 && c <= 0x7e) bits |= kRequestLine;
    t[static_cast<size_t>(c)] = bits;
  }
  return t;
}

constexpr std::array<uint8_t, 256> kByteClass = make_byte_classes();

constexpr bool has_class(char c, ByteClass cls) noexcept {
  return (kByteClass[static_cast<unsigned char>(c)] & cls) != 0;
}

constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!has_class(c, kTchar)) return false;
  }
  return true;
}

// RFC 9110 §5.5: field-value = *field-content, made of field-vchar (VCHAR
// or obs-text), SP and HTAB. CR, LF and NUL MUST be rejected or replaced;
// any other control byte is invalid too, and a strict parser refuses rather
// than repairs.
bool is_field_value(std::string_view s) noexcept {
  size_t i = 0;
  // Eight bytes at a time: a word passes when no byte is below 0x20 and
  // none is 0x7F (DEL). Both tests are exact ("has a byte less than n",
  // valid for n <= 0x80), so only a word that fails, e.g. one holding an
  // HTAB, is looked at byte by byte below.
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof w);
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
    const uint64_t x = w ^ (kOnes * 0x7f);
    const uint64_t del = (x - kOnes) & ~x & kHighs;
    if ((below_space | del) != 0) break;
  }
  for (; i < s.size(); ++i) {
    if (!has_class(s[i], kFieldVchar) && !is_ows(s[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// A line without its terminator: lines end in CRLF or, as RFC 9112 §2.2
// allows a recipient to accept, in a bare LF. `lf` is the index of the LF.
std::string_view line_before(std::string_view buf, size_t start, size_t lf) noexcept {
  size_t end = lf;
  if (end > start && buf[end - 1] == '\r') --end;
  return buf.substr(start, end - start);
}

// Offset of the request line: past up to kMaxLeadingEmptyLines empty lines
// (RFC 9112 §2.2). Reads only `buf`; a CR that is its last byte is left for
// the caller, which cannot yet tell CRLF from a bare CR.
size_t skip_leading_empty_lines(std::string_view buf) noexcept {
  size_t pos = 0;
  for (int n = 0; n < kMaxLeadingEmptyLines; ++n) {
    if (pos + 1 < buf.size() && buf[pos] == '\r' && buf[pos + 1] == '\n') {
      pos += 2;
    } else if (pos < buf.size() && buf[pos] == '\n') {
      pos += 1;
    } else {
      break;
    }
  }
  return pos;
}

struct RequestLine {
  std::string_view method;
  std::string_view target;
  std::string_view path;
  std::string_view query;
  uint8_t version_minor = 1;
};

// RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
HttpError parse_version(std::string_view v, uint8_t& minor) noexcept {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !digit(v[5]) || v[6] != '.' || !digit(v[7])) {
    return HttpError::bad_request_line;
  }
  // Only major version 1 speaks this syntax; any 1.x minor is read with 1.1
  // semantics (RFC 9110 §2.5), and HTTP/2 and later are answered with 505.
  if (v[5] != '1') return HttpError::unsupported_version;
  minor = static_cast<uint8_t>(v[7] - '0');
  return HttpError::none;
}

// Splits a target that is known to hold no SP or control byte into path and
// query (RFC 9112 §3.2).
HttpError parse_target(std::string_view method, std::string_view target, RequestLine& out) noexcept {
  if (target.empty()) return HttpError::bad_target;
  // RFC 9110 §4.2.5: a fragment is never sent in a request target, and a
  // router must not be shown one.
  if (target.find('#') != std::string_view::npos) return HttpError::bad_target;

  // RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS.
  if (target == "*") {
    if (method != "OPTIONS") return HttpError::bad_target;
    out.path = target;
    out.query = {};
    return HttpError::none;
  }

  std::string_view rest = target;
  if (target.front() != '/') {
    // RFC 9112 §3.2.2: a server MUST accept absolute-form. Only the http and
    // https schemes (case-insensitive, RFC 9110 §4.2.3) name something this
    // server can be; anything else (authority-form, other schemes) is refused.
    size_t scheme_len = 0;
    if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
      scheme_len = 7;
    } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
      scheme_len = 8;
    } else {
      return HttpError::bad_target;
    }
    const std::string_view after_scheme = target.substr(scheme_len);
    const size_t authority_end = std::min(after_scheme.find_first_of("/?"), after_scheme.size());
    // RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected.
    if (authority_end == 0) return HttpError::bad_target;
    // RFC 9110 §4.2.4: userinfo in an http URI is deprecated and its
    // presence SHOULD be treated as an error (it is a phishing device).
    if (after_scheme.substr(0, authority_end).find('@') != std::string_view::npos) {
      return HttpError::bad_target;
    }
    rest = after_scheme.substr(authority_end);
    if (rest.empty() || rest.front() == '?') {
      // An empty path means "/" (RFC 9110 §4.2.3). The view is the last '/'
      // of "://" so that, like every other view, it points into the buffer.
      out.path = target.substr(scheme_len - 1, 1);
      out.query = rest.empty() ? std::string_view{} : rest.substr(1);
      return HttpError::none;
    }
  }
  const size_t q = rest.find('?');
  if (q == std::string_view::npos) {
    out.path = rest;
    out.query = {};
  } else {
    out.path = rest.substr(0, q);
    out.query = rest.substr(q + 1);
  }
  return HttpError::none;
}

// RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
// The scan has already refused any byte that is not VCHAR or SP.
HttpError parse_request_line(std::string_view line, RequestLine& out) noexcept {
  const size_t first_sp = line.find(' ');
  const size_t last_sp = line.rfind(' ');
  if (first_sp == std::string_view::npos || first_sp == last_sp) {
    return HttpError::bad_request_line;
  }
  out.method = line.substr(0, first_sp);
  out.target = line.substr(first_sp + 1, last_sp - first_sp - 1);
  // RFC 9110 §9.1: the method is a token.
  if (!is_token(out.method)) return HttpError::bad_method;
  // The version is checked before the target: a line that does not end in
  // an HTTP version is not a request line at all, whatever sits in between.
  const HttpError v = parse_version(line.substr(last_sp + 1), out.version_minor);
  if (v != HttpError::none) return v;
  // RFC 9112 §3.2: no whitespace inside the target; more than two SPs on
  // the line puts one there.
  if (out.target.find(' ') != std::string_view::npos) return HttpError::bad_target;
  return parse_target(out.method, out.target, out);
}

// One header line, without its terminator (RFC 9112 §5).
HttpError parse_header_line(std::string_view line, HttpHeader& out) noexcept {
  // RFC 9112 §5.2: obs-fold is obsolete and a server may reject it; a line
  // that starts with whitespace is either a fold or whitespace before the
  // first field (RFC 9112 §2.2), and both are refused.
  if (!line.empty() && is_ows(line.front())) return HttpError::obs_fold;
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return HttpError::bad_header_name;
  const std::string_view name = line.substr(0, colon);
  // RFC 9112 §5.1: "A server MUST reject, with a response status code of
  // 400, any received request message that contains whitespace between a
  // header field name and colon."
  if (is_ows(name.back())) return HttpError::whitespace_before_colon;
  // RFC 9110 §5.1: field-name = token.
  if (!is_token(name)) return HttpError::bad_header_name;
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_field_value(value)) return HttpError::bad_header_value;
  out.name = name;
  out.value = value;
  return HttpError::none;
}

// The second pass over a complete head (see the file comment): fills `out`
// or names the first fault in byte order. `head` ends with its empty line.
HttpError fill_head(std::string_view head, size_t max_headers, HttpRequestHead& out) noexcept {
  const size_t start = skip_leading_empty_lines(head);
  size_t lf = head.find('\n', start);
  RequestLine rl;
  const HttpError rle = parse_request_line(line_before(head, start, lf), rl);
  if (rle != HttpError::none) return rle;
  out.method = rl.method;
  out.target = rl.target;
  out.path = rl.path;
  out.query = rl.query;
  out.version_minor = rl.version_minor;
  out.header_count = 0;

  for (;;) {
    const size_t line_start = lf + 1;
    lf = head.find('\n', line_start);
    const std::string_view line = line_before(head, line_start, lf);
    if (line.empty()) return HttpError::none;  // the empty line that ends the head
    if (out.header_count >= max_headers) return HttpError::too_many_headers;
    const HttpError he = parse_header_line(line, out.headers[out.header_count]);
    if (he != HttpError::none) return he;
    ++out.header_count;
  }
}

}  // namespace

int http_status_for(HttpError e) noexcept {
  switch (e) {
    case HttpError::none: return 0;  // nothing to answer
    case HttpError::bad_request_line:
    case HttpError::bad_method:
    case HttpError::bad_target:
    case HttpError::bad_header_name:
    case HttpError::bad_header_value:
    case HttpError::whitespace_before_colon:
    case HttpError::obs_fold:
    case HttpError::bare_cr: return 400;
    case HttpError::unsupported_version: return 505;
    case HttpError::head_too_large:
    case HttpError::too_many_headers: return 431;
  }
  return 400;
}

const char* describe(HttpError e) noexcept {
  switch (e) {
    case HttpError::none: return "no error";
    case HttpError::bad_request_line: return "malformed request line";
    case HttpError::bad_method: return "method is not a token";
    case HttpError::bad_target: return "invalid request target";
    case HttpError::unsupported_version: return "HTTP version not supported";
    case HttpError::bad_header_name: return "invalid header field name";
    case HttpError::bad_header_value: return "invalid byte in header field value";
    case HttpError::whitespace_before_colon: return "whitespace between header field name and colon";
    case HttpError::obs_fold: return "obsolete line folding";
    case HttpError::bare_cr: return "CR not followed by LF";
    case HttpError::head_too_large: return "request head too large";
    case HttpError::too_many_headers: return "too many header fields";
  }
  return "unknown HTTP error";
}

std::string_view HttpRequestHead::header(std::string_view name, bool* found) const noexcept {
  const size_t n = std::min(header_count, kMaxHeaders);
  for (size_t i = 0; i < n; ++i) {
    if (iequals(headers[i].name, name)) {
      if (found != nullptr) *found = true;
      return headers[i].value;
    }
  }
  if (found != nullptr) *found = false;
  return {};
}

Http1Parser::Http1Parser(size_t max_head_size, size_t max_headers) noexcept
    : max_head_size_(max_head_size), max_headers_(std::min(max_headers, HttpRequestHead::kMaxHeaders)) {}

void Http1Parser::reset() noexcept {
  scanned_ = 0;
  request_line_checked_ = false;
  head_size_ = 0;
  error_ = HttpError::none;
}

ParseStatus Http1Parser::parse(std::string_view buffered, HttpRequestHead& out) noexcept {
  if (error_ != HttpError::none) return ParseStatus::error;
  // Asked again after success: the answer stands and `out` is left as the
  // successful call filled it.
  if (head_size_ != 0) return ParseStatus::done;
  // A shorter buffer than last time breaks the contract; starting over is
  // the only reading of it that cannot run past the end.
  if (buffered.size() < scanned_) reset();

  const auto fail = [this](HttpError e) {
    error_ = e;
    return ParseStatus::error;
  };
  const char* const p = buffered.data();
  const size_t size = buffered.size();
  // The head, including its empty line, must fit in max_head_size; bytes
  // past that can only matter if the head ended before them.
  const size_t limit = std::min(size, max_head_size_);
  size_t i = scanned_;
  while (i < limit && !request_line_checked_) {
    const char c = p[i];
    if (c == '\r') {
      // RFC 9112 §2.2: a bare CR MUST be treated as invalid or replaced
      // with SP; it is refused here. A CR that is the last byte so far is
      // left for the next call, which will see what follows it.
      if (i + 1 >= size) break;
      if (p[i + 1] != '\n') return fail(HttpError::bare_cr);
    } else if (c == '\n') {
      const size_t start = skip_leading_empty_lines(buffered.substr(0, i + 1));
      if (i >= start) {
        // Reject a malformed request line as soon as it is complete.
        RequestLine rl;
        const HttpError e = parse_request_line(line_before(buffered, start, i), rl);
        if (e != HttpError::none) return fail(e);
        request_line_checked_ = true;
      }
    } else if (!has_class(c, kRequestLine)) {
      // Until the request line is complete, a byte that can never be part
      // of one (a control byte, DEL, non-ASCII) ends the request at once, so
      // binary garbage such as a TLS ClientHello costs one byte, not 8 KiB.
      return fail(HttpError::bad_request_line);
    }
    ++i;
  }
  // The header section: here only CR and LF matter to the scan, and memchr
  // finds them many bytes at a time. Each turn handles one line.
  while (i < limit && request_line_checked_) {
    const void* const lf_ptr = std::memchr(p + i, '\n', limit - i);
    const size_t lf = lf_ptr != nullptr ? static_cast<size_t>(static_cast<const char*>(lf_ptr) - p) : limit;
    if (const void* const cr_ptr = std::memchr(p + i, '\r', lf - i)) {
      // The first CR before the LF: only the one right before it, or one at
      // the limit that a LF follows, is part of a line end (RFC 9112 §2.2).
      const size_t cr = static_cast<size_t>(static_cast<const char*>(cr_ptr) - p);
      if (cr + 1 >= size) {
        i = cr;
        break;
      }
      if (p[cr + 1] != '\n') return fail(HttpError::bare_cr);
    }
    i = lf;
    if (lf_ptr == nullptr) break;
    // An empty line after the request line ends the head (RFC 9112 §2.1).
    // The request line's LF lies before i, so i - 1 and, after a CR, i - 2
    // are in the buffer.
    if (p[i - 1] == '\n' || (p[i - 1] == '\r' && p[i - 2] == '\n')) {
      scanned_ = i + 1;
      const HttpError e = fill_head(buffered.substr(0, i + 1), max_headers_, out);
      if (e != HttpError::none) return fail(e);
      head_size_ = i + 1;
      return ParseStatus::done;
    }
    ++i;
  }
  scanned_ = i;
  if (size > max_head_size_) return fail(HttpError::head_too_large);
  return ParseStatus::need_more;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool header_has_token(std::string_view value, std::string_view token) noexcept {
  // RFC 9110 §5.6.1: #element lists allow empty elements and OWS around
  // the commas; a recipient must skip the empty ones.
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view element =
        trim_ows(value.substr(0, comma == std::string_view::npos ? value.size() : comma));
    if (!element.empty() && iequals(element, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string join_header_lines(const HttpRequestHead& head, std::string_view name, bool* found) {
  std::string out;
  bool any = false;
  for (size_t i = 0; i < head.header_count; ++i) {
    if (!iequals(head.headers[i].name, name)) continue;
    if (any) out += ", ";
    out += head.headers[i].value;
    any = true;
  }
  if (found) *found = any;
  return out;
}

}  // namespace windlass::proto
