// The seam between the HTTP layer and the WebSocket layer, so that neither
// includes the other: the HTTP session routes an upgrade request to an
// UpgradeTarget (the WsServer's endpoint for that route), and the target
// answers through the UpgradeSession the HTTP session gives it — refusing
// with an HTTP status, or taking the socket over. The App wires the two.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "windlass/loop.hpp"
#include "windlass/request.hpp"

namespace windlass::proto {
struct HttpRequestHead;
}

namespace windlass::detail {

class Socket;

// The WebSocket layer's handshake while it waits for a deferred answer.
// The HTTP session stays the socket's handler until then and tells it
// what happens meanwhile. Loop thread only.
class PendingUpgradeLink {
 public:
  // The connection closed before the answer came.
  virtual void client_left() = 0;
  // A sweep: refuses the handshake through the session if its deadline passed.
  virtual void sweep(Loop::Clock::time_point now) = 0;
  // The server is stopping: refuses the handshake (503) through the session.
  virtual void shutdown() = 0;

 protected:
  ~PendingUpgradeLink() = default;
};

// The HTTP session's side of a handshake. Loop thread only.
class UpgradeSession {
 public:
  // Answers the upgrade request with an error response (counted, logged,
  // access-logged), then closes the connection after it.
  virtual void refuse_upgrade(int status, std::string_view reason, std::string_view extra_headers) = 0;
  // The WebSocket layer takes the socket (it has made itself the socket's
  // handler). Returns the bytes the client sent after its request head,
  // valid until the end of the loop turn; the session frees itself then.
  virtual std::span<uint8_t> hand_over() = 0;
  // The answer will come later through `link`; null once it has come.
  virtual void set_pending(PendingUpgradeLink* link) = 0;
  // When the request's first byte arrived (for the access log's duration).
  virtual Loop::Clock::time_point started() const = 0;

 protected:
  ~UpgradeSession() = default;
};

// A WebSocket endpoint as the HTTP layer sees it.
class UpgradeTarget {
 public:
  virtual ~UpgradeTarget() = default;
  // An upgrade request routed here, after the checks every request passes
  // (filters, 503). `head` and `request` are views valid during the call.
  // Answers through `session`, now or (having called set_pending) later.
  virtual void upgrade(Socket& socket, const proto::HttpRequestHead& head, const Request& request,
                       UpgradeSession& session) = 0;
};

}  // namespace windlass::detail
