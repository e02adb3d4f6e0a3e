// The HTTP request that opened a connection (or a plain HTTP request), in
// owned strings so it outlives the receive buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace windlass {

struct Request {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // percent-encoded, as sent
  std::string query;   // without '?'
  uint8_t version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;    // plain HTTP requests with Content-Length only
  std::string remote_address;  // peer IP, without port
  // The client's address: remote_address, or the one a trusted proxy named
  // in X-Forwarded-For / X-Real-IP (ServerOptions::access.trusted_proxies).
  std::string client_address;
  uint16_t remote_port = 0;

  // First header of that name (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
  // A query parameter, percent-decoded ('+' as space), or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
  // A cookie from the Cookie header(s) (RFC 6265 §5.4), or nullopt.
  std::optional<std::string> cookie(std::string_view name) const;
};

// Percent-decoding of a URL component; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_as_space = false);

}  // namespace windlass
