// WsServer: the RFC 6455 opening handshake on top of a parsed HTTP request
// (Ratchet's WsServer): validates the upgrade, negotiates the subprotocol,
// answers 101 and hands the socket to a new WsConnection.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/io_server.hpp"
#include "proto/http1_parser.hpp"
#include "windlass/app.hpp"
#include "ws/pubsub.hpp"

namespace windlass::detail {

struct WsRoute {
  std::shared_ptr<MessageComponent> component;
  WsOptions options;
  std::vector<std::string> subprotocols;  // from component->subprotocols(), read once
};

// Counters are plain integers: a WsServer lives on one loop.
struct WsCounters {
  uint64_t opened = 0;
  uint64_t messages_in = 0;
  uint64_t bytes_in = 0;
  std::array<uint64_t, 7> closes_by_cause{};
};

class WsServer {
 public:
  // Completes the handshake of `head` (already routed to `route`). On a bad
  // request it writes the error response itself and returns false.
  // `rest` are the bytes that followed the head in the same read.
  bool upgrade(Socket& socket, const proto::HttpRequestHead& head, Request request, WsRoute& route,
               uint8_t* rest, size_t rest_len);

  void count_message_in(size_t bytes) noexcept {
    ++counters_.messages_in;
    counters_.bytes_in += bytes;
  }
  void count_close(CloseCause cause) noexcept { ++counters_.closes_by_cause[static_cast<size_t>(cause)]; }
  const WsCounters& counters() const noexcept { return counters_; }

  TopicTable& topics() noexcept { return topics_; }
  Hub& hub() noexcept { return *hub_; }
  void set_hub(Hub* hub) noexcept { hub_ = hub; }

 private:
  TopicTable topics_;  // this loop's subscribers
  Hub* hub_ = nullptr;
  WsCounters counters_;
  std::string response_;  // reused for every 101 response
};

}  // namespace windlass::detail
