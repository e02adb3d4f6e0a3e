// A WebSocket connection as the application sees it: Ratchet's
// ConnectionInterface.
//
// Thread safety: a Connection belongs to one loop, and every callback for
// it runs on that loop's thread. send(), close() and the accessors may be
// called from any thread: off the loop thread, send() and close() copy
// their arguments and post them to the owner loop (then send() returns
// true when the message was handed over, not when it was queued).
//
// A Connection is a handle: copies refer to the same connection, and a
// handle kept after the connection closed stays safe to use: send() returns
// false, close() does nothing, the accessors still answer.
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "windlass/request.hpp"

namespace windlass {

namespace detail {
class WsConnection;
}

class Loop;

enum class MessageKind : uint8_t { text, binary };

// A received message. Its bytes are valid only during on_message (they
// usually live in the loop's receive buffer): copy what you keep.
struct Message {
  MessageKind kind = MessageKind::text;
  std::string_view data;

  bool is_text() const noexcept { return kind == MessageKind::text; }
  bool is_binary() const noexcept { return kind == MessageKind::binary; }
};

// Why a connection ended, reported once to on_close.
enum class CloseCause : uint8_t {
  peer_closed,        // the client sent a close frame (code, reason: the client's)
  server_closed,      // the application called close() (code, reason: the application's)
  protocol_error,     // the client broke RFC 6455 (code 1002/1007/1009, reason says what)
  keepalive_timeout,  // no answer to a keepalive ping within the timeout (code 1006)
  slow_consumer,      // the send queue exceeded its limit (code 1008)
  rate_limited,       // the client sent faster than WsOptions::rate_limit allows (code 1008)
  shutdown,           // the server is stopping (code 1001)
  transport_closed,   // the TCP connection ended without a close handshake (code 1006)
};
const char* to_string(CloseCause cause) noexcept;

struct CloseInfo {
  uint16_t code = 1006;
  std::string reason;
  CloseCause cause = CloseCause::transport_closed;
  bool clean = false;  // the close handshake completed both ways
};

class Connection {
 public:
  Connection() = default;  // an empty handle: not open, sends fail
  explicit Connection(std::shared_ptr<detail::WsConnection> impl) noexcept : impl_(std::move(impl)) {}

  // Queues a text (UTF-8) or binary message. Returns false when the
  // connection is not open, or when queuing it would exceed the send-queue
  // limit (the connection is then closed as a slow consumer, code 1008).
  bool send(std::string_view text) const;
  bool send_binary(std::span<const std::byte> data) const;
  bool send_binary(std::string_view data) const;
  bool send(const Message& message) const;

  // Starts the close handshake (RFC 6455 §7.1.2). `code` must be 1000 or
  // 3000-4999 or another code valid on the wire; the reason is cut to 123 bytes.
  void close(uint16_t code = 1000, std::string_view reason = {}) const;

  // Topics (publish/subscribe across every loop of the App). subscribe and
  // unsubscribe: loop thread only; a closed connection leaves its topics.
  bool subscribe(std::string_view topic) const;
  bool unsubscribe(std::string_view topic) const;
  // Sends to every subscriber of `topic`, on every loop, except this
  // connection. The frame is encoded once and shared. Any thread.
  void publish(std::string_view topic, std::string_view data, MessageKind kind = MessageKind::text) const;
  void publish(std::string_view topic, const Message& message) const {
    publish(topic, message.data, message.kind);
  }

  bool is_open() const noexcept;
  // Bytes queued for this connection and not yet accepted by the kernel.
  size_t buffered_amount() const noexcept;

  // A process-wide unique id, never reused (Ratchet's resourceId).
  uint64_t id() const noexcept;
  const Request& request() const noexcept;  // the upgrade request
  const std::string& remote_address() const noexcept;
  const std::string& subprotocol() const noexcept;  // negotiated, or empty
  Loop* loop() const noexcept;

  // Per-connection application data (Ratchet lets you set properties on
  // $conn). Loop thread only.
  std::any& data() const;

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool operator==(const Connection& o) const noexcept { return impl_ == o.impl_; }
  const std::shared_ptr<detail::WsConnection>& impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<detail::WsConnection> impl_;
};

}  // namespace windlass

template <>
struct std::hash<windlass::Connection> {
  size_t operator()(const windlass::Connection& c) const noexcept {
    return std::hash<const void*>()(c.impl().get());
  }
};
