// A strict, incremental HTTP/1.1 request-head parser (RFC 9112 §2-§5).
// Pure: it reads the bytes the caller has buffered and does no I/O. The
// views it produces point into the caller's buffer, which must stay put
// until the request has been handled.
//
// Strictness, each a distinct HttpError:
//   - request line `METHOD SP target SP HTTP/1.x CRLF`; method is a token;
//     target is origin-form (starts with '/'), or absolute-form, or '*'
//     for OPTIONS; no control bytes or spaces in the target
//   - HTTP/1.0 and HTTP/1.1 are accepted; HTTP/2+ and others -> 505
//   - header lines `name: value`; name is a token with no whitespace before
//     the colon (§5.1 MUST reject); no obs-fold continuation lines (§5.2);
//     no CR or NUL or other control bytes (except HTAB) in values
//   - lines end in CRLF; a bare LF is accepted as §2.2 allows, a bare CR is not
//   - the head ends at the first empty line; its size is limited
//     (max_head_size, 431) and so is the header count (max_headers, 431)
// Incremental: each call scans only the bytes it has not seen before, and
// a malformed request line is rejected as soon as that line is complete
// (garbage before the head does not wait for the size limit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "windlass/request.hpp"

namespace windlass::proto {

enum class HttpError : uint8_t {
  none,
  bad_request_line,      // 400
  bad_method,            // 400: method is not a token
  bad_target,            // 400
  unsupported_version,   // 505
  bad_header_name,       // 400
  bad_header_value,      // 400
  whitespace_before_colon,  // 400 (RFC 9112 §5.1)
  obs_fold,              // 400 (RFC 9112 §5.2)
  bare_cr,               // 400
  head_too_large,        // 431
  too_many_headers,      // 431
};

// HTTP status to answer with, and a fixed reason for logs.
int http_status_for(HttpError e) noexcept;
const char* describe(HttpError e) noexcept;

// A header line: name as sent (compare with iequals()), value with its
// leading and trailing spaces and tabs removed. The public type, so a
// parsed head's headers are the application's Request::headers, uncopied.
using HttpHeader = ::windlass::HeaderField;

struct HttpRequestHead {
  static constexpr size_t kMaxHeaders = 100;  // hard ceiling for max_headers

  std::string_view method;
  std::string_view target;  // as sent
  std::string_view path;    // target up to '?' (origin-form), or the path of an absolute-form target
  std::string_view query;   // after '?', without it; empty if none
  uint8_t version_minor = 1;
  size_t header_count = 0;
  HttpHeader headers[kMaxHeaders];

  // First header named `name` (case-insensitive), or an empty view. `found`
  // tells an empty value from a missing header.
  std::string_view header(std::string_view name, bool* found = nullptr) const noexcept;
};

enum class ParseStatus : uint8_t { need_more, done, error };

class Http1Parser {
 public:
  explicit Http1Parser(size_t max_head_size = 8192, size_t max_headers = 64) noexcept;

  // `buffered` is everything received for this request so far, starting at
  // its first byte (the same start on every call, possibly longer each
  // time). On `done`, head_size() is the head's length including the final
  // empty line; bytes after it belong to the body or the next protocol.
  ParseStatus parse(std::string_view buffered, HttpRequestHead& out) noexcept;

  HttpError error() const noexcept { return error_; }
  size_t head_size() const noexcept { return head_size_; }
  void reset() noexcept;

 private:
  size_t max_head_size_;
  size_t max_headers_;
  size_t scanned_ = 0;        // bytes already searched for the end of the head
  bool request_line_checked_ = false;
  size_t head_size_ = 0;
  HttpError error_ = HttpError::none;
};

// Every line of header `name` joined with ", " (RFC 9110 §5.3: a list-valued
// field split over several lines means the same as one line). `found`
// tells a missing header from an empty one.
std::string join_header_lines(const HttpRequestHead& head, std::string_view name, bool* found = nullptr);

// ASCII case-insensitive comparison.
bool iequals(std::string_view a, std::string_view b) noexcept;

// True when the comma-separated list `value` contains `token`, compared
// case-insensitively, with optional whitespace around elements (RFC 9110 §5.6.1).
bool header_has_token(std::string_view value, std::string_view token) noexcept;

}  // namespace windlass::proto
