// The server side of the RFC 6455 opening handshake (§4.2). Pure.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "proto/http1_parser.hpp"

namespace windlass::proto {

enum class HandshakeError : uint8_t {
  none,
  method_not_get,        // 405 with Allow: GET (§4.2.1 item 1)
  http_version,          // 400: must be HTTP/1.1 or higher (§4.2.1 item 1)
  missing_host,          // 400 (§4.2.1 item 2)
  not_upgrade,           // 426: no "Upgrade: websocket" (§4.2.1 items 3-4)
  missing_connection_upgrade,  // 400: Connection lacks the "upgrade" token
  bad_version,           // 426 with Sec-WebSocket-Version: 13 (§4.2.2 item 4)
  bad_key,               // 400: Sec-WebSocket-Key missing or not base64 of 16 bytes (§4.2.1 item 5)
};

int http_status_for(HandshakeError e) noexcept;
const char* describe(HandshakeError e) noexcept;

struct UpgradeRequest {
  std::string_view key;         // Sec-WebSocket-Key
  std::string_view protocols;   // Sec-WebSocket-Protocol (raw list), may be empty
  std::string_view extensions;  // Sec-WebSocket-Extensions (raw list), may be empty
  std::string_view origin;      // Origin, may be empty
};

// True when the request asks for a WebSocket upgrade at all (has an Upgrade
// header naming websocket); decides between the WebSocket and the plain-HTTP
// answer for a route.
bool wants_websocket(const HttpRequestHead& req) noexcept;

// Validates an upgrade request (§4.2.1) and fills `out`.
HandshakeError validate_upgrade(const HttpRequestHead& req, UpgradeRequest& out) noexcept;

// base64(SHA-1(key + GUID)) (§4.2.2 item 5.4), 28 characters, via OpenSSL.
std::string compute_accept_key(std::string_view client_key);

// Picks the subprotocol: the first of the server's `supported` list (its
// order of preference) that the client offered; empty when none matches
// (the handshake then succeeds without one, §4.2.2 item 5.5).
std::string_view select_subprotocol(std::string_view offered,
                                    std::span<const std::string> supported) noexcept;

// Writes the complete 101 response head into `out` and returns it.
std::string& build_accept_response(std::string& out, std::string_view accept_key,
                                   std::string_view subprotocol, std::string_view extensions);

}  // namespace windlass::proto
