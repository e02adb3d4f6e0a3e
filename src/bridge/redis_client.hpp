// Redis for a windlass loop, standalone or Cluster: commands routed to the
// node that owns their key, publish/subscribe kept across reconnects, and
// in a Cluster the sharded pub/sub of Redis 7 (SPUBLISH, SSUBSCRIBE), so
// channels spread over the shards instead of every message visiting every
// node. MOVED and ASK are followed, the slot map is refreshed on them and
// every slots_refresh, and a channel whose slot moved is subscribed again
// where it went. Loop thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/redis_link.hpp"

namespace windlass::redis {

// The Cluster hash slot of a key (CRC16 XMODEM of the key, or of its
// {hash tag}, mod 16384).
uint16_t hash_slot(std::string_view key) noexcept;

struct ClientOptions {
  std::vector<Endpoint> seeds;  // numeric addresses; standalone: the first
  bool cluster = false;
  std::string username;
  std::string password;
  int database = 0;  // standalone only
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reply_timeout{5000};
  std::chrono::milliseconds slots_refresh{10000};
  size_t max_pending = 100'000;
};

class Client {
 public:
  using MessageHandler = std::function<void(std::string_view channel, std::string_view payload)>;
  using PatternHandler =
      std::function<void(std::string_view pattern, std::string_view channel, std::string_view payload)>;
  using StateHandler = std::function<void(bool up, std::string_view why)>;

  Client(Loop& loop, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start();
  void stop();
  // Commands can be routed and the subscriptions are in place.
  bool up() const noexcept { return up_; }

  // A command for `key`'s node (any node when `key` is empty). Retried on
  // MOVED/ASK/TRYAGAIN a few times; the callback gets the final answer.
  void command(std::string key, std::vector<std::string> args, Link::Callback cb);
  // Pub/sub: what is wanted is kept and re-established by itself.
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  void psubscribe(const std::string& pattern);
  // PUBLISH (standalone) or SPUBLISH to the channel's shard (Cluster).
  void publish(const std::string& channel, std::string_view payload, Link::Callback cb = {});

  void on_message(MessageHandler h) { message_ = std::move(h); }
  void on_pmessage(PatternHandler h) { pmessage_ = std::move(h); }
  void on_state(StateHandler h) { state_ = std::move(h); }

  size_t subscriptions() const noexcept { return wanted_.size(); }
  std::vector<Endpoint> masters() const;

 private:
  struct Node {
    Endpoint endpoint;
    std::unique_ptr<Link> cmd;
    std::unique_ptr<Link> sub;  // made when it has subscriptions
    std::set<std::string> subscribed;  // confirmed or asked on `sub`
  };

  Node& node_for(const Endpoint& e);
  Node* owner(std::string_view key);
  Link& sub_link(Node& n);
  void refresh_slots();
  void apply_slots(const redisReply& r);
  void reconcile();
  void reconcile(const std::string& channel);
  void on_push(Node& n, const redisReply& r);
  void send(std::string key, std::vector<std::string> args, Link::Callback cb, int tries, const Endpoint* ask);
  void update_state(std::string_view why);

  Loop& loop_;
  ClientOptions options_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // by "host:port"
  std::array<Node*, 16384> slots_{};                     // Cluster: the owner of each slot
  bool slots_known_ = false;
  bool refreshing_ = false;
  std::set<std::string> wanted_;    // channels to be subscribed
  std::set<std::string> patterns_;  // patterns to be subscribed (on the first node)
  Node* pattern_node_ = nullptr;
  std::set<std::string> patterns_on_;  // asked on pattern_node_
  MessageHandler message_;
  PatternHandler pmessage_;
  StateHandler state_;
  bool up_ = false;
  bool started_ = false;
  Loop::TimerId refresh_timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace windlass::redis
