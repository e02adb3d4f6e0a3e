// A WebSocket connection as the application sees it: Ratchet's
// ConnectionInterface.
//
// A Connection is a handle, three words copied by value: copies refer to
// the same connection, and a handle kept after its connection ended stays
// safe to use — sends return SendStatus::closed, close() does nothing,
// is_open() is false — because it carries the connection's id, which is
// never reused, and checks it before touching anything. (The memory behind
// a handle belongs to its loop and is reused for later connections; a
// handle must not be used after its App is destroyed.)
//
// Threads. A connection belongs to one loop; every callback for it runs on
// that loop's thread. The methods are marked:
//   any thread  send*(), close(), publish(), is_open(), buffered_amount(),
//               id(), loop(). Off the loop thread, send() and close() copy
//               their arguments and post them to the owner loop.
//   loop thread the rest. Called from another thread they abort with a
//               message in debug and sanitizer builds; in release builds
//               the result is undefined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>

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

// What send() did with a message. Backpressure the application can act
// on, as uWebSockets' and Node's streams give it: stop producing for a
// connection at `backpressure` and resume at MessageComponent::on_drain.
enum class SendStatus : uint8_t {
  queued,        // accepted (on another thread: handed to the owner loop)
  backpressure,  // accepted, but the queue is now over WsOptions::send_watermark
  dropped,       // refused: it would pass ServerOptions::max_send_queue, and the
                 // connection is being closed as a slow consumer (code 1008)
  closed,        // refused: the connection is not open (or the handle is empty)
};
const char* to_string(SendStatus status) noexcept;
// The message was taken: queued or backpressure.
constexpr bool accepted(SendStatus s) noexcept {
  return s == SendStatus::queued || s == SendStatus::backpressure;
}

class Connection {
 public:
  Connection() = default;  // an empty handle: not open, sends fail
  Connection(detail::WsConnection* impl, uint64_t id, Loop* loop) noexcept : impl_(impl), id_(id), loop_(loop) {}

  // Any thread. Queues a text (UTF-8) or binary message.
  SendStatus send(std::string_view text) const;
  SendStatus send_binary(std::span<const std::byte> data) const;
  SendStatus send_binary(std::string_view data) const;
  SendStatus send(const Message& message) const;

  // Any thread. Starts the close handshake (RFC 6455 §7.1.2). `code` must
  // be 1000 or 3000-4999 or another code valid on the wire (anything else
  // becomes 1000); the reason is cut to 123 bytes.
  void close(uint16_t code = 1000, std::string_view reason = {}) const;

  // Topics, through the App's broker (see broker.hpp): subscribe and
  // unsubscribe on the loop thread; a closed connection leaves its topics.
  bool subscribe(std::string_view topic) const;
  bool unsubscribe(std::string_view topic) const;
  // Any thread. Sends to every subscriber of `topic`, on every loop (and
  // every node, with a bridge installed), except this connection. The
  // frame is encoded once and shared.
  void publish(std::string_view topic, std::string_view data, MessageKind kind = MessageKind::text) const;
  void publish(std::string_view topic, const Message& message) const { publish(topic, message.data, message.kind); }

  // Any thread (a snapshot: the loop may change it the next moment).
  bool is_open() const noexcept;
  // Any thread. Bytes queued for this connection and not yet taken by the kernel.
  size_t buffered_amount() const noexcept;

  // Any thread. Never reused within a process. With ServerOptions::node_id
  // set, unique across every node that has its own node id: the node id is
  // in the top 24 bits (see node_of() and counter_of()).
  uint64_t id() const noexcept { return id_; }
  static constexpr unsigned kNodeIdBits = 24;
  static constexpr unsigned kCounterBits = 64 - kNodeIdBits;
  static constexpr uint32_t node_of(uint64_t id) noexcept { return static_cast<uint32_t>(id >> kCounterBits); }
  static constexpr uint64_t counter_of(uint64_t id) noexcept { return id & ((uint64_t{1} << kCounterBits) - 1); }
  Loop* loop() const noexcept { return loop_; }

  // Loop thread. The TCP peer ("192.0.2.7", "2001:db8::1"; empty once closed).
  std::string remote_address() const;
  uint16_t remote_port() const;
  // Loop thread. The negotiated subprotocol, or empty.
  std::string_view subprotocol() const;
  // Loop thread, inside MessageComponent::on_upgrade only: the upgrade
  // request. It is not kept after the hook returns (an idle connection
  // costs a few hundred bytes because of that); copy what you need into
  // the connection's state. Elsewhere: an abort with a message in debug and
  // sanitizer builds, an empty Request in release builds.
  const Request& request() const;
  // Loop thread. The component's per-connection state, stored inline with
  // the connection (see Component<State> in component.hpp). State must be
  // the type the route's component declared: checked in debug and
  // sanitizer builds.
  template <class State>
  State& state() const {
    return *static_cast<State*>(state_ptr(typeid(State)));
  }

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool operator==(const Connection& o) const noexcept { return id_ == o.id_ && impl_ == o.impl_; }
  detail::WsConnection* impl() const noexcept { return impl_; }

 private:
  void* state_ptr(const std::type_info& type) const;
  // The connection, when this handle still refers to it (its id matches);
  // loop thread only.
  detail::WsConnection* live() const noexcept;

  detail::WsConnection* impl_ = nullptr;
  uint64_t id_ = 0;
  Loop* loop_ = nullptr;
};

}  // namespace windlass

template <>
struct std::hash<windlass::Connection> {
  size_t operator()(const windlass::Connection& c) const noexcept { return std::hash<uint64_t>()(c.id()); }
};
