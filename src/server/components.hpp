// The components windlass-server offers to [[route]] tables: "chat" (a
// room on a topic) and "echo". Their callbacks run on every loop's thread
// at once, so they hold no state but atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "windlass/component.hpp"

namespace windlass::server {

// What every server component shares: the subprotocols its route offers,
// a count of its open connections (for /metrics), and an on_error that
// logs and closes with 1011.
class ServerComponent : public MessageComponent {
 public:
  explicit ServerComponent(std::vector<std::string> subprotocols) : subprotocols_(std::move(subprotocols)) {}

  void on_open(Connection& conn) override;
  void on_close(Connection& conn, const CloseInfo& info) override;
  void on_error(Connection& conn, std::exception_ptr error) override;
  std::vector<std::string> subprotocols() const override { return subprotocols_; }

  uint64_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

 protected:
  virtual void opened(Connection&) {}
  virtual void closed(Connection&, const CloseInfo&) {}

 private:
  std::vector<std::string> subprotocols_;
  // Touched once per open and once per close, not per message, so a shared
  // atomic costs nothing that matters.
  std::atomic<uint64_t> open_{0};
};

// Every message goes to every other connection of the room. The room is a
// topic, so members on other loops get it too, encoded once.
class ChatComponent final : public ServerComponent {
 public:
  ChatComponent(std::string topic, std::vector<std::string> subprotocols)
      : ServerComponent(std::move(subprotocols)), topic_(std::move(topic)) {}
  void on_message(Connection& from, const Message& msg) override;

 protected:
  void opened(Connection& conn) override;

 private:
  std::string topic_;
};

// Every message comes back to its sender as it was sent.
class EchoComponent final : public ServerComponent {
 public:
  using ServerComponent::ServerComponent;
  void on_message(Connection& conn, const Message& msg) override;
};

// The origin tag of what windlass-server takes from Laravel's Redis
// broadcaster (every node consumes it itself: a bridge must not carry it).
inline constexpr uint32_t kLaravelOrigin = 0x4c415256;  // "LARV"

// The component for a WebSocket route (chat or echo).
std::shared_ptr<ServerComponent> make_component(const RouteConfig& route);

}  // namespace windlass::server
