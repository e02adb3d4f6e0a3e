// WsServer: the RFC 6455 opening handshake on top of a parsed HTTP request
// (Ratchet's WsServer): validates the upgrade, negotiates the subprotocol,
// answers 101 and hands the socket to a new WsConnection.
#pragma once

#include <array>
#include <functional>
#include <iterator>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/io_server.hpp"
#include "metrics/counter.hpp"
#include "proto/deflate.hpp"
#include "proto/http1_parser.hpp"
#include "proto/ws_handshake.hpp"
#include "http/access_control.hpp"
#include "ws/rate_limit.hpp"
#include "windlass/app.hpp"
#include "ws/pubsub.hpp"

namespace windlass::detail {

struct WsRoute {
  std::shared_ptr<MessageComponent> component;
  WsOptions options;
  std::vector<std::string> subprotocols;  // from component->subprotocols(), read once
  proto::DeflatePolicy deflate;           // from options.compression
  RateLimitConfig rate;                   // from options.rate_limit
};

// The route's compression options as the negotiation policy.
proto::DeflatePolicy deflate_policy(const CompressionOptions& c);

// The close codes counted one by one; the rest (3000-4999 mostly) share a slot.
inline constexpr uint16_t kCountedCloseCodes[] = {1000, 1001, 1002, 1003, 1005, 1006, 1007,
                                                  1008, 1009, 1010, 1011, 1012, 1013, 1014};
inline constexpr size_t kCloseCodeSlots = std::size(kCountedCloseCodes) + 1;

// One writer (this loop), read by scrapes: see metrics/counter.hpp.
struct WsCounters {
  Counter opened;
  Counter messages_in, bytes_in;
  Counter messages_out, bytes_out;
  Counter closes_by_cause[8];  // one per CloseCause
  Counter close_codes[kCloseCodeSlots];
};

class WsServer {
 public:
  // Completes the handshake of `head` (already routed to `route`) and hands
  // the socket to a new WsConnection. On a bad upgrade request it writes
  // nothing and returns the error; the HTTP layer answers it.
  // `rest` are the bytes that followed the head in the same read.
  proto::HandshakeError upgrade(Socket& socket, const proto::HttpRequestHead& head, Request request,
                                WsRoute& route, uint8_t* rest, size_t rest_len,
                                Loop::Clock::time_point started, ConnectionSlot slot);

  void count_message_in(size_t bytes) noexcept {
    counters_.messages_in.add();
    counters_.bytes_in.add(bytes);
  }
  void count_message_out(size_t frame_bytes) noexcept {
    counters_.messages_out.add();
    counters_.bytes_out.add(frame_bytes);
  }
  void count_close(CloseCause cause, uint16_t code) noexcept;
  const WsCounters& counters() const noexcept { return counters_; }

  void set_access_hook(const std::function<void(const AccessEvent&)>* hook) noexcept { on_access_ = hook; }
  const std::function<void(const AccessEvent&)>* access_hook() const noexcept { return on_access_; }

  // The loop's shared compressor for these settings (CompressionOptions::
  // Mode::shared): no context takeover, so one stream serves every
  // connection and a broadcast is compressed once.
  proto::Deflater& shared_deflater(const proto::DeflaterConfig& config);
  // Per-loop scratch for compressed output.
  std::string& deflate_scratch() noexcept { return deflate_scratch_; }

  TopicTable& topics() noexcept { return topics_; }
  Hub& hub() noexcept { return *hub_; }
  void set_hub(Hub* hub) noexcept { hub_ = hub; }

 private:
  TopicTable topics_;  // this loop's subscribers
  Hub* hub_ = nullptr;
  WsCounters counters_;
  const std::function<void(const AccessEvent&)>* on_access_ = nullptr;
  std::string response_;  // reused for every 101 response
  std::vector<std::unique_ptr<proto::Deflater>> shared_deflaters_;  // few: one per distinct setting
  std::string deflate_scratch_;
};

}  // namespace windlass::detail
