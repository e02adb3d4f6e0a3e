// The application's side of a WebSocket route: Ratchet's
// MessageComponentInterface, with C++ names, an upgrade hook and typed
// per-connection state.
//
// Every callback runs on the connection's loop thread (so, with several
// loops, on several threads at once: keep the component's own members
// thread-safe, and put per-connection data in its state). An exception
// thrown from a callback is caught at this boundary and passed to
// on_error; the connection is then closed with 1011 unless on_error
// closed it already (from on_upgrade: the handshake is refused with 500).
// It never reaches the loop.
//
// The life of a connection, as the component sees it:
//   on_upgrade ─┬─ accepted ─ on_open ─ on_message / on_drain ... ─ on_close
//               └─ refused, timed out, or the client left ─ on_upgrade_failed
// Each connection that reached on_open gets exactly one on_close; one that
// did not gets exactly one on_upgrade_failed instead. Its state is
// constructed before on_upgrade and destroyed exactly once, after the last
// of these.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "windlass/connection.hpp"
#include "windlass/upgrade.hpp"

namespace windlass {

// How a component's per-connection state is laid out and made: what the
// library needs to store it inline with each connection, without an
// allocation of its own (uWebSockets' PerSocketData is the model).
struct StateTraits {
  size_t size = 0;
  size_t align = 1;
  const std::type_info* type = nullptr;
  void (*construct)(void*) = nullptr;
  void (*destroy)(void*) noexcept = nullptr;

  template <class T>
  static StateTraits of() noexcept {
    static_assert(std::is_default_constructible_v<T>, "per-connection state must be default-constructible");
    static_assert(std::is_nothrow_destructible_v<T>, "per-connection state must not throw from its destructor");
    static_assert(alignof(T) <= alignof(std::max_align_t), "over-aligned per-connection state is not supported");
    return StateTraits{sizeof(T), alignof(T), &typeid(T), [](void* p) { ::new (p) T(); },
                       [](void* p) noexcept { static_cast<T*>(p)->~T(); }};
  }
  bool empty() const noexcept { return size == 0; }
};

class MessageComponent {
 public:
  virtual ~MessageComponent() = default;

  // The handshake, before the 101 (see upgrade.hpp). The default accepts.
  virtual void on_upgrade(Upgrade& upgrade) { upgrade.accept(); }
  // The handshake did not open: `status` is the HTTP status the client got
  // (refused by this component or by a decorator, 504 at the deadline,
  // 500 for a hook that did not answer), or 0 when the client left first.
  // Decorators release here what their on_upgrade took.
  virtual void on_upgrade_failed(Connection& conn, int status) {
    (void)conn;
    (void)status;
  }
  // The handshake completed; the connection is open.
  virtual void on_open(Connection& conn) { (void)conn; }
  // A complete message arrived (text already validated as UTF-8).
  virtual void on_message(Connection& conn, const Message& msg) = 0;
  // The send queue fell back under WsOptions::send_watermark after a send
  // returned SendStatus::backpressure: the connection takes data again.
  virtual void on_drain(Connection& conn) { (void)conn; }
  // The connection ended; called exactly once per opened connection.
  virtual void on_close(Connection& conn, const CloseInfo& info) {
    (void)conn;
    (void)info;
  }
  // A callback of this component threw.
  virtual void on_error(Connection& conn, std::exception_ptr error) {
    (void)conn;
    (void)error;
  }

  // Subprotocols this component speaks, in order of preference
  // (Sec-WebSocket-Protocol, RFC 6455 §4.2.2): what Upgrade::accept()
  // picks from. Read once, when the route is added. Empty: none.
  virtual std::vector<std::string> subprotocols() const { return {}; }
  // The per-connection state (see Component<State>). Read once, when the
  // route is added. Empty: none.
  virtual StateTraits state_traits() const { return {}; }
};

// A component with per-connection state of type State, stored inline with
// each connection (default-constructed before on_upgrade, destroyed after
// on_close or on_upgrade_failed):
//
//   struct Player { std::string name; int score = 0; };
//   class Game final : public windlass::Component<Player> {
//     void on_message(windlass::Connection& c, const windlass::Message& m) override {
//       state(c).score += 1;
//     }
//   };
template <class State>
class Component : public MessageComponent {
 public:
  using state_type = State;
  StateTraits state_traits() const override { return StateTraits::of<State>(); }
  static State& state(const Connection& conn) { return conn.state<State>(); }
};

// The text of an exception_ptr, for logs ("unknown exception" for non-std types).
std::string describe_exception(std::exception_ptr e);

}  // namespace windlass
