// Decorators: components that wrap a component and decide at its upgrade
// hook, as Ratchet's OriginCheck and IpBlackList wrap theirs. They compose:
//
//   auto chat = std::make_shared<Chat>();
//   auto guarded = std::make_shared<windlass::OriginCheck>(
//       std::make_shared<windlass::ConnectionLimit>(chat, windlass::PerIpCounter::make(8)),
//       std::vector<std::string>{"https://example.com"});
//   app.route("/chat", guarded);
//   app.filter(std::make_shared<windlass::IpBlackList>(std::vector<std::string>{"203.0.113.0/24"}));
//
// ServerOptions::access builds exactly these for every route, so a server
// configured by options and one wired by hand answer alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/component.hpp"
#include "windlass/http.hpp"

namespace windlass {

namespace detail {
class OriginPolicy;
class IpSet;
class ConnectionLimiter;
}  // namespace detail

// Forwards every callback to the component it wraps. Derive from it and
// override what the decorator adds (usually on_upgrade, and
// on_upgrade_failed / on_close to release what it took).
class ComponentDecorator : public MessageComponent {
 public:
  explicit ComponentDecorator(std::shared_ptr<MessageComponent> inner);

  void on_upgrade(Upgrade& upgrade) override { inner_->on_upgrade(upgrade); }
  void on_upgrade_failed(Connection& conn, int status) override { inner_->on_upgrade_failed(conn, status); }
  void on_open(Connection& conn) override { inner_->on_open(conn); }
  void on_message(Connection& conn, const Message& msg) override { inner_->on_message(conn, msg); }
  void on_drain(Connection& conn) override { inner_->on_drain(conn); }
  void on_close(Connection& conn, const CloseInfo& info) override { inner_->on_close(conn, info); }
  void on_error(Connection& conn, std::exception_ptr error) override { inner_->on_error(conn, error); }
  std::vector<std::string> subprotocols() const override { return inner_->subprotocols(); }
  StateTraits state_traits() const override { return inner_->state_traits(); }

  MessageComponent& inner() const noexcept { return *inner_; }

 protected:
  std::shared_ptr<MessageComponent> inner_;
};

// Ratchet's OriginCheck: refuses a handshake whose Origin is not allowed
// with 403 (AccessOptions::allowed_origins has the syntax: serialized
// origins, "https://*.example.com", "null"). Browsers always send Origin
// on a WebSocket handshake, so this stops other sites' pages from opening
// connections with a visitor's cookies; it does not stop other clients.
class OriginCheck final : public ComponentDecorator {
 public:
  // Throws std::invalid_argument naming the first bad entry:
  //   allowed_origins[1] "https://a.com/x": ...
  OriginCheck(std::shared_ptr<MessageComponent> inner, const std::vector<std::string>& allowed_origins,
              bool allow_missing_origin = true);
  ~OriginCheck() override;
  void on_upgrade(Upgrade& upgrade) override;

 private:
  std::unique_ptr<detail::OriginPolicy> policy_;
};

// Ratchet's IpBlackList: refuses every request (plain HTTP and WebSocket)
// from a listed client address with 403, before routing. Rules are
// addresses or CIDR networks ("203.0.113.7", "10.0.0.0/8",
// "2001:db8::/32"); the client address is Request::client_address (the
// one a trusted proxy named, see AccessOptions::trusted_proxies). Install
// with App::filter().
class IpBlackList final : public RequestFilter {
 public:
  // Throws std::invalid_argument naming the first bad rule.
  explicit IpBlackList(const std::vector<std::string>& rules);
  ~IpBlackList() override;
  std::optional<Refusal> check(const Request& request) override;

 private:
  std::unique_ptr<detail::IpSet> set_;
};

// Open WebSocket connections per client address, counted over the whole
// process (every loop, and every route that shares the counter). IPv4
// addresses count whole; IPv6 ones per network of `ipv6_prefix` bits (an
// end site gets at least a /64). Thread-safe; touched twice per connection.
class PerIpCounter {
 public:
  static std::shared_ptr<PerIpCounter> make(size_t max_per_ip, unsigned ipv6_prefix = 64);
  explicit PerIpCounter(std::unique_ptr<detail::ConnectionLimiter> limiter);
  ~PerIpCounter();

  size_t max_per_ip() const noexcept;
  // Open connections counted for `client_address` ("192.0.2.7"), for tests and stats.
  size_t count(std::string_view client_address) const;
  // Counts connection `connection_id` for its client address; false (and
  // nothing counted) when that address is at the maximum.
  bool acquire(uint64_t connection_id, std::string_view client_address);
  // Undoes acquire(); nothing if the connection was not counted.
  void release(uint64_t connection_id);

 private:
  struct Held;
  std::unique_ptr<detail::ConnectionLimiter> limiter_;
  std::unique_ptr<Held> held_;
};

// Refuses a handshake with 429 when its client address already holds the
// counter's maximum; counts the connection until it closes (or until its
// handshake fails further in). Put it innermost of the refusing
// decorators, so a connection refused for another reason is not counted.
class ConnectionLimit final : public ComponentDecorator {
 public:
  ConnectionLimit(std::shared_ptr<MessageComponent> inner, std::shared_ptr<PerIpCounter> counter);
  void on_upgrade(Upgrade& upgrade) override;
  void on_upgrade_failed(Connection& conn, int status) override;
  void on_close(Connection& conn, const CloseInfo& info) override;

 private:
  std::shared_ptr<PerIpCounter> counter_;
};

}  // namespace windlass
