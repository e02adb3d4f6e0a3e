// The upgrade hook: a component sees the WebSocket upgrade request before
// the 101 and decides — accept (choosing the subprotocol, filling its
// per-connection state), refuse with an HTTP status, or answer later.
//
//   void on_upgrade(windlass::Upgrade& up) override {
//     auto token = up.request().query_param("token");
//     if (!token) return up.refuse(401, "a token is required");
//     up.connection().state<User>().name = *token;
//     up.accept();
//   }
//
// Answering later (asking the application's web app, verifying a token on
// another thread): defer() returns a PendingUpgrade, which may answer from
// any thread. The handshake waits until it does, or until
// WsOptions::upgrade_timeout (then the client gets
// WsOptions::upgrade_timeout_status, 504 by default, and a log line).
// The request is not kept while it waits: copy what the answer needs
// (RequestCopy copies all of it).
//
// The upgrade request has passed every RFC 6455 check when the hook runs:
// a malformed handshake is answered 400/426/405 before any component sees it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/connection.hpp"
#include "windlass/http.hpp"
#include "windlass/request.hpp"

namespace windlass {

namespace detail {
class Handshake;
struct PendingHandshake;
}  // namespace detail

class Upgrade;

// Answers a deferred upgrade. Any thread; copies refer to the same
// handshake. The first answer counts: each method returns true when its
// answer is the one the client gets, false when the handshake was already
// answered, timed out, or its client left. Dropping every copy without an
// answer refuses the handshake with 500.
class PendingUpgrade {
 public:
  PendingUpgrade() = default;
  explicit PendingUpgrade(std::shared_ptr<detail::PendingHandshake> p) noexcept : p_(std::move(p)) {}

  // Accepts with the route's subprotocol preference (MessageComponent::
  // subprotocols()). `prepare`, if given, runs on the connection's loop
  // thread just before on_open, with the connection: the place to fill
  // its state with what the asynchronous check found out.
  bool accept(std::function<void(Connection&)> prepare = {}) const;
  // Accepts with this subprotocol (one the client offered, or empty for none).
  bool accept_with(std::string subprotocol, std::function<void(Connection&)> prepare = {}) const;
  bool refuse(int status, std::string reason, std::vector<std::pair<std::string, std::string>> headers = {}) const;
  bool refuse(Refusal refusal) const;
  // Hands the handshake on: on the connection's loop thread, `hook` gets a
  // new Upgrade over `request` (the copy the deferring hook kept) and
  // answers it as on_upgrade would — accept, refuse, or defer() again,
  // which returns this same handle (answerable again, same deadline).
  // This is how a decorator that deferred for a check of its own lets the
  // component it wraps decide after the check passed:
  //   pending.resume(std::move(copy), [inner](windlass::Upgrade& up) { inner->on_upgrade(up); });
  // The request (and Connection::request()) is valid during the hook. A
  // hook that throws, or returns without an answer, refuses with 500.
  bool resume(RequestCopy request, std::function<void(Upgrade&)> hook) const;

  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::shared_ptr<detail::PendingHandshake> p_;
};

// The handshake in progress, given to MessageComponent::on_upgrade on the
// connection's loop thread. Answer it once: accept, refuse or defer. A
// hook that returns without answering gets its handshake refused with 500
// (and a log line naming the route).
class Upgrade {
 public:
  explicit Upgrade(detail::Handshake& h) noexcept : h_(h) {}
  Upgrade(const Upgrade&) = delete;
  Upgrade& operator=(const Upgrade&) = delete;

  // The upgrade request; valid during on_upgrade only.
  const Request& request() const noexcept;
  std::optional<std::string_view> param(std::string_view name) const noexcept { return request().param(name); }
  // The connection being opened. Not open yet (sends are refused), but its
  // id() and state<T>() work: fill the state here.
  Connection connection() const noexcept;
  // The subprotocols the client offered (Sec-WebSocket-Protocol, all
  // lines), in its order.
  std::vector<std::string_view> offered_subprotocols() const;

  // Accepts with the route's subprotocol preference.
  void accept();
  // Accepts with `subprotocol`, which must be one the client offered (or
  // empty: none). Another one refuses the handshake with 500 and logs why:
  // RFC 6455 §4.2.2 lets the server pick only from the client's list.
  void accept_with(std::string_view subprotocol);
  void refuse(int status, std::string_view reason, std::vector<std::pair<std::string, std::string>> headers = {});
  void refuse(Refusal refusal);
  // Answers later, through the returned handle (see PendingUpgrade).
  PendingUpgrade defer();

  bool answered() const noexcept;

 private:
  detail::Handshake& h_;
};

}  // namespace windlass
