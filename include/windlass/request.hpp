// An HTTP request as the application sees it: the upgrade request of a
// WebSocket handshake (in MessageComponent::on_upgrade) or a plain HTTP
// request (in an HttpHandler).
//
// A Request is a set of views. They point into the loop's receive buffer
// or the session's own buffer and are valid only during the call that was
// given the Request: the server keeps no copy. Copy what you keep — the
// few strings you need, or the whole request with RequestCopy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace windlass {

struct HeaderField {
  std::string_view name;   // as sent; compare case-insensitively
  std::string_view value;  // leading and trailing spaces and tabs removed
};

// The parts of the path a route pattern captured: "/app/:key" matched by
// "/app/abc" gives key = "abc"; a trailing "*" captures the rest of the
// path under the name "*". Values are views into the path, as sent
// (percent-encoded).
class RouteParams {
 public:
  static constexpr size_t kMax = 8;  // captures per pattern (checked when the route is added)

  // The value captured under `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept {
    for (size_t i = 0; i < size_; ++i) {
      if (items_[i].first == name) return items_[i].second;
    }
    return std::nullopt;
  }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const std::pair<std::string_view, std::string_view>& operator[](size_t i) const noexcept { return items_[i]; }

  void add(std::string_view name, std::string_view value) noexcept {
    if (size_ < kMax) items_[size_++] = {name, value};
  }
  void clear() noexcept { size_ = 0; }

 private:
  std::array<std::pair<std::string_view, std::string_view>, kMax> items_{};
  size_t size_ = 0;
};

struct Request {
  std::string_view method;
  std::string_view target;  // as sent: path and query
  std::string_view path;    // percent-encoded, as sent
  std::string_view query;   // without '?'
  uint8_t version_minor = 1;
  std::span<const HeaderField> headers;  // in order, names as sent
  std::string_view body;                 // plain HTTP requests with Content-Length only
  std::string_view remote_address;       // the TCP peer's IP, without port
  // The client's address: remote_address, or the one a trusted proxy named
  // in X-Forwarded-For / X-Real-IP (ServerOptions::access.trusted_proxies).
  std::string_view client_address;
  uint16_t remote_port = 0;
  RouteParams params;  // what the route's pattern captured

  // First header of that name (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  // A query parameter, percent-decoded ('+' as space), or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
  // A cookie from the Cookie header(s) (RFC 6265 §5.4), or nullopt.
  std::optional<std::string> cookie(std::string_view name) const;
  // A route parameter (see RouteParams), or nullopt.
  std::optional<std::string_view> param(std::string_view name) const noexcept { return params.get(name); }
};

// A Request that owns its bytes, for work that outlives the call (an
// upgrade answered later, a request handed to another thread). One heap
// block holds every string and the views of get() point into it, so a move
// keeps them valid. Not copyable (the copy's views would point into this one).
class RequestCopy {
 public:
  RequestCopy() = default;
  explicit RequestCopy(const Request& request);
  RequestCopy(RequestCopy&&) noexcept = default;
  RequestCopy& operator=(RequestCopy&&) noexcept = default;
  RequestCopy(const RequestCopy&) = delete;
  RequestCopy& operator=(const RequestCopy&) = delete;

  const Request& get() const noexcept { return request_; }
  const Request* operator->() const noexcept { return &request_; }

 private:
  std::unique_ptr<char[]> bytes_;
  std::vector<HeaderField> headers_;
  Request request_;
};

// Percent-decoding of a URL component; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_as_space = false);

}  // namespace windlass
