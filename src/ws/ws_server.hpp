// WsServer: one loop's WebSocket layer (Ratchet's WsServer). For each
// route it has an endpoint, the UpgradeTarget the HTTP layer hands upgrade
// requests to: it validates the RFC 6455 handshake, runs the component's
// upgrade hook, answers 101 and turns the socket over to a WsConnection
// placed in the endpoint's slab.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "loop/loop_gate.hpp"

#include "http/upgrade_target.hpp"
#include "io/io_server.hpp"
#include "io/slab.hpp"
#include "metrics/counter.hpp"
#include "proto/deflate.hpp"
#include "proto/ws_frame_decoder.hpp"
#include "windlass/broker.hpp"
#include "windlass/component.hpp"
#include "windlass/stats.hpp"
#include "windlass/ws_options.hpp"
#include "ws/pubsub.hpp"
#include "ws/rate_limit.hpp"

namespace windlass::detail {

class Handshake;
class LocalBroker;
class WsConnection;
class WsEndpoint;
class WsServer;
struct PendingHandshake;

// A route as every loop shares it: read-only once the loops run.
struct WsRoute {
  std::string pattern;
  std::shared_ptr<MessageComponent> component;
  WsOptions options;
  std::vector<std::string> subprotocols;  // from component->subprotocols(), read once
  StateTraits state;                      // from component->state_traits(), read once
  proto::DeflatePolicy deflate;           // from options.compression
  RateLimitConfig rate;                   // from options.rate_limit
};

// Computes one accept key, so the crypto library's lazy setup happens now.
std::string warm_up_handshake();

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

// What sits in front of every WsConnection in its slot, for the whole life
// of the slab: the parts of a connection that other threads read through
// a Connection handle. They outlive the objects placed after them, so a
// stale handle reads a live atomic (and an id that is no longer its own).
struct ConnectionSlotHeader {
  explicit ConnectionSlotHeader(WsEndpoint* e) noexcept : endpoint(e) {}
  WsEndpoint* const endpoint;         // the slab's owner: written once, before any use
  std::atomic<uint64_t> id{0};        // 0 while the slot is free
  std::atomic<uint32_t> buffered{0};  // Socket::set_buffered_mirror
  std::atomic<uint8_t> open{0};       // 1 while the connection is open
};
inline constexpr size_t kSlotHeaderSize = 24;
static_assert(sizeof(ConnectionSlotHeader) <= kSlotHeaderSize);

// One route on one loop.
class WsEndpoint final : public UpgradeTarget {
 public:
  WsEndpoint(WsServer& server, const WsRoute& route);
  ~WsEndpoint() override;

  void upgrade(Socket& socket, const proto::HttpRequestHead& head, const Request& request,
               UpgradeSession& session) override;

  const WsRoute& route() const noexcept { return route_; }
  WsServer& server() const noexcept { return server_; }
  MessageComponent& component() const noexcept { return *route_.component; }
  const proto::DecoderOptions& decoder_options() const noexcept { return decoder_; }
  // Where a connection's parts sit in its slot.
  size_t rate_offset() const noexcept { return rate_offset_; }
  size_t state_offset() const noexcept { return state_offset_; }
  size_t slot_size() const noexcept { return slots_.slot_size(); }

  // Frees a connection's slot (its object destroyed) at the end of the turn.
  void retire(WsConnection* conn);
  void free_retired();
  size_t live_connections() const noexcept { return slots_.live(); }

  // Runs an upgrade hook over `h` (the component's on_upgrade, or a hook
  // given to PendingUpgrade::resume): Connection::request() works during
  // it, and an exception goes to the component's on_error and refuses
  // the handshake with 500 (unless it had deferred).
  void run_hook(Handshake& h, const char* what, const std::function<void(Upgrade&)>& hook);

 private:
  friend class WsConnection;
  WsServer& server_;
  const WsRoute& route_;
  proto::DecoderOptions decoder_;
  size_t rate_offset_ = 0;   // 0: no rate limiter in the slot
  size_t state_offset_ = 0;  // 0: no state
  Slab slots_;
  std::vector<WsConnection*> retired_;
};

// What the App gives every loop's WsServer.
struct WsShared {
  const std::function<void(const AccessEvent&)>* on_access = nullptr;
  Broker* const* broker = nullptr;  // the App's installed broker (may change until run())
  LocalBroker* local = nullptr;
  uint32_t node_id = 0;
};

class WsServer {
 public:
  WsServer(Loop& loop, LoopResources& resources, TopicTable& topics, WsShared shared);
  const std::shared_ptr<LoopGate>& gate() const noexcept { return gate_; }
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  // One endpoint per route, in the routes' order.
  WsEndpoint& add_endpoint(const WsRoute& route);
  std::vector<UpgradeTarget*> endpoints() const;

  void count_message_in(size_t bytes) noexcept {
    counters_.messages_in.add();
    counters_.bytes_in.add(bytes);
  }
  void count_message_out(size_t frame_bytes) noexcept {
    counters_.messages_out.add();
    counters_.bytes_out.add(frame_bytes);
  }
  void count_close(CloseCause cause, uint16_t code) noexcept;
  void count_opened() noexcept { counters_.opened.add(); }
  const WsCounters& counters() const noexcept { return counters_; }

  const std::function<void(const AccessEvent&)>* access_hook() const noexcept { return shared_.on_access; }
  Broker& broker() const noexcept { return **shared_.broker; }
  LocalBroker& local_broker() const noexcept { return *shared_.local; }
  TopicTable& topics() noexcept { return topics_; }
  Loop& loop() const noexcept { return loop_; }
  LoopResources& resources() const noexcept { return res_; }
  // A new connection id: this node's id on top, a process-wide counter below.
  uint64_t next_id() noexcept;

  // The loop's shared compressor for these settings (CompressionOptions::
  // Mode::shared): no context takeover, so one stream serves every
  // connection and a broadcast is compressed once.
  proto::Deflater& shared_deflater(const proto::DeflaterConfig& config);

  // Deferred handshakes waiting for their answer (kept alive here).
  void hold(std::shared_ptr<PendingHandshake> pending);
  void release(PendingHandshake* pending);

  std::string& response_scratch() noexcept { return response_; }

  // The upgrade request of the handshake whose hook is running, for
  // Connection::request(); null outside on_upgrade.
  void set_current_upgrade(const WsConnection* conn, const Request* request) noexcept {
    current_conn_ = conn;
    current_request_ = request;
  }
  const Request* current_request(const WsConnection* conn) const noexcept {
    return conn == current_conn_ ? current_request_ : nullptr;
  }

 private:
  void free_retired();

  Loop& loop_;
  // What a deferred handshake answered from another thread posts through.
  std::shared_ptr<LoopGate> gate_ = std::make_shared<LoopGate>(loop_);
  LoopResources& res_;
  TopicTable& topics_;
  WsShared shared_;
  WsCounters counters_;
  std::vector<std::unique_ptr<WsEndpoint>> endpoints_;
  std::vector<std::shared_ptr<PendingHandshake>> pending_;
  std::string response_;  // reused for every 101 response
  const WsConnection* current_conn_ = nullptr;
  const Request* current_request_ = nullptr;
  std::vector<std::unique_ptr<proto::Deflater>> shared_deflaters_;  // few: one per distinct setting
};

}  // namespace windlass::detail
