// The Redis bridge: several windlass processes (nodes) behind a load
// balancer act as one, through Redis — standalone, or a Redis Cluster with
// the sharded pub/sub of Redis 7. Library windlass_redis; a decorator of
// the App's broker (broker.hpp), nothing the core knows about.
//
//   windlass::App app(options);                 // options.node_id: unique per node
//   auto bridge = windlass::redis::RedisBridge::install(app, {.url = "redis://127.0.0.1:6379"});
//   app.run();
//
// What it does:
//   - every publish made on this node (origin 0) is delivered here at once
//     and PUBLISHed (SPUBLISHed) on "<prefix><topic>", with this node's id
//     and the excluded connection in a small envelope;
//   - the node SUBSCRIBEs only to the topics it has subscribers for (the
//     local broker's first/last-subscriber events), so what a node receives
//     scales with its own topics, not the cluster's;
//   - what arrives from another node is delivered to the local subscribers
//     with this bridge's origin tag (never published again); its own
//     messages coming back are dropped: each subscriber gets a message once;
//   - when Redis goes away, local delivery goes on; publishes wait in a
//     bounded outbox (then are dropped, counted) and the links reconnect
//     with backoff and subscribe again.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/app.hpp"
#include "windlass/broker.hpp"

namespace windlass::redis {

struct RedisOptions {
  // redis://[[user]:password@]host[:port][/database]. A name is resolved
  // once, by install(). redis-cluster://host:port,host:port,... (seed
  // nodes) selects Cluster mode, as does giving cluster_seeds.
  std::string url = "redis://127.0.0.1:6379";
  std::vector<std::string> cluster_seeds{};  // "host:port"
  // Put before every channel and key, so that several deployments (or
  // apps) can share one Redis without hearing each other.
  std::string prefix{"windlass:"};
  size_t outbox_messages = 10'000;   // publishes kept while Redis is away
  size_t outbox_bytes = 16u << 20;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reply_timeout{5000};
  std::chrono::milliseconds slots_refresh{10000};  // Cluster: how often the slot map is read again
};

// The origin tag of what the bridge delivers from other nodes.
inline constexpr uint32_t kRedisOrigin = 0x52454449;  // "REDI"

struct BridgeStats {
  bool connected = false;
  int64_t split_since_unix_ms = 0;  // when Redis was last lost (0: connected, or never)
  uint64_t published = 0;           // messages sent to Redis
  uint64_t received = 0;            // messages from other nodes delivered here
  uint64_t own_echoes = 0;          // this node's own messages coming back, dropped
  uint64_t dropped = 0;             // publishes dropped: the outbox was full
  uint64_t outbox = 0;              // waiting now
  uint64_t reconnects = 0;          // times the bridge came back after a loss
  uint64_t subscriptions = 0;       // topics subscribed on Redis
  uint64_t malformed = 0;           // messages on our channels that were not ours
};

class RedisBridge final : public BrokerDecorator, public TopicObserver {
 public:
  // Before app.run(): installs the bridge as the App's broker and runs its
  // Redis connections on the App's first loop. Throws std::invalid_argument
  // for a bad URL or an unresolvable host, naming it.
  static std::shared_ptr<RedisBridge> install(App& app, RedisOptions options);
  ~RedisBridge() override;

  void publish(std::string_view topic, const Message& message, const PublishOptions& options = {}) override;

  // Any thread.
  BridgeStats stats() const;
  bool connected() const noexcept;

  // Any thread: a command for `key`'s node, answered on the bridge's loop
  // with the reply flattened to text (or `error`). For what a node keeps in
  // Redis besides messages (presence, counts): keys should carry the
  // prefix (key()) and, for a Cluster, one {hash tag} per group of keys a
  // script touches together.
  using CommandCallback = std::function<void(const std::vector<std::string>& reply, std::string_view error)>;
  void command(std::string key, std::vector<std::string> args, CommandCallback cb);
  std::string key(std::string_view name) const { return prefix_ + std::string(name); }
  // Any thread: classic pattern subscriptions (for inputs such as Laravel's
  // Redis broadcaster, which PUBLISHes on "<its prefix><channel>"). The
  // handler runs on the bridge's loop.
  using PatternHandler = std::function<void(std::string_view channel, std::string_view payload)>;
  void psubscribe(std::string pattern, PatternHandler handler);

  // TopicObserver (the local broker's first/last subscriber of a topic).
  void on_topic_occupied(std::string_view topic) override;
  void on_topic_vacated(std::string_view topic) override;

  struct Impl;

 private:
  RedisBridge(App& app, RedisOptions options);
  std::string prefix_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace windlass::redis
