// The hub's parts, shared by hub.cpp (the WebSocket side), http_api.cpp
// (the HTTP API) and webhooks.cpp. Built on windlass's public API only
// (include/windlass/) and the pure cores of this folder.
//
// Who owns what:
//   process-wide (Hub::Impl, behind a mutex each, touched per
//   subscription or API call, never per delivery): the apps and their
//   counters, the presence registry, the cache channels' last events, the
//   webhook queue;
//   per loop (LoopHub, a LoopLocal): the message parsers and signers
//   (not thread-safe, one per loop), the connections the activity sweep
//   walks, the signed-in users' connections, scratch buffers;
//   per connection (PusherConn, the component's state, inline with the
//   connection): its app, its subscriptions, its client-event budget.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "channels/api_request.hpp"
#include "channels/channel_name.hpp"
#include "channels/client_message.hpp"
#include "channels/json_text.hpp"
#include "channels/presence.hpp"
#include "channels/server_message.hpp"
#include "channels/signature.hpp"
#include "windlass/channels.hpp"
#include "windlass/http_client.hpp"
#include "windlass/loop_local.hpp"
#include "windlass/windlass.hpp"

namespace windlass::channels {

// Pusher's close codes (protocol 7) the hub sends.
enum class PusherClose : uint16_t {
  app_not_found = 4001,
  app_disabled = 4003,
  over_quota = 4004,
  unsupported_protocol = 4007,
  no_protocol = 4008,
  unauthorized = 4009,
  reconnect_now = 4200,
  pong_not_received = 4201,
  client_event_rate = 4301,
};

// Counters of one app: atomics, touched from every loop.
struct AppCounters {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> messages_out{0};
  std::atomic<uint64_t> client_events{0};
  std::atomic<uint64_t> webhooks_sent{0};
  std::atomic<uint64_t> webhooks_failed{0};
  std::atomic<uint64_t> webhooks_dropped{0};
  std::mutex mu;  // for the maps below (per API call / failure, not per message)
  std::map<int, uint64_t> api_calls;
  std::map<std::string, uint64_t> auth_failures;
  std::map<uint16_t, uint64_t> closes;

  void count_api(int status) {
    std::lock_guard lock(mu);
    ++api_calls[status];
  }
  void count_auth_failure(std::string_view reason) {
    std::lock_guard lock(mu);
    ++auth_failures[std::string(reason)];
  }
  void count_close(uint16_t code) {
    std::lock_guard lock(mu);
    ++closes[code];
  }
};

struct AppState {
  AppConfig config;
  size_t index = 0;   // in Hub::Impl::apps, and in each LoopHub's signers
  std::string topic_prefix;  // "<id>:"
  AppCounters counters;
  std::set<std::string> webhook_events;  // of every target, for a quick "is anyone listening"

  std::string topic(std::string_view channel) const { return topic_prefix + std::string(channel); }
  bool wants_webhook(std::string_view event) const { return webhook_events.contains(std::string(event)); }
};

// Presence members of every presence channel in this process: a user is a
// member while at least one of its connections is subscribed. Joins and
// leaves are per subscription, not per message: one lock is fine.
class PresenceRegistry {
 public:
  struct Member {
    std::string user_info;  // raw JSON
    size_t connections = 0;
  };
  enum class Join : uint8_t { added, already_member, full };

  // `topic` is the channel's broker topic. On `added` and `already_member`
  // `members` is filled with the channel's members (this one included).
  Join join(const std::string& topic, const std::string& user_id, const std::string& user_info, size_t max_members,
            std::vector<std::pair<std::string, std::string>>* members);
  // True when it was the user's last connection: the member is gone.
  bool leave(const std::string& topic, const std::string& user_id);
  std::vector<std::pair<std::string, std::string>> members(const std::string& topic) const;
  size_t user_count(const std::string& topic) const;
  // Distinct members over the channels whose topic starts with `prefix`.
  size_t member_count(std::string_view prefix) const;
  // Every channel's members here: topic -> (user_id, user_info).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::map<std::string, Member>> channels_;
};

// The last event of every cache channel (cache-, private-cache-, ...),
// replayed to each new subscriber.
class EventCache {
 public:
  void put(const std::string& topic, std::string event) {
    std::lock_guard lock(mu_);
    last_[topic] = std::move(event);
  }
  std::optional<std::string> get(const std::string& topic) const {
    std::lock_guard lock(mu_);
    auto it = last_.find(topic);
    if (it == last_.end()) return std::nullopt;
    return it->second;
  }
  void drop(const std::string& topic) {
    std::lock_guard lock(mu_);
    last_.erase(topic);
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::string> last_;
};

// One webhook event waiting to be sent.
struct WebhookEvent {
  size_t app = 0;
  std::string json;  // {"name":..,"channel":..,...}
};

class Webhooks;
class ClusterState;

// The per-connection state (Component<PusherConn>).
struct PusherConn {
  AppState* app = nullptr;
  PusherClose refuse = static_cast<PusherClose>(0);  // set in on_upgrade: closed with it on open
  uint32_t last_in_ms = 0;     // the hub's clock (LoopHub::now_ms) of the last client message
  bool ping_sent = false;
  uint32_t sweep_index = UINT32_MAX;  // place in LoopHub::connections
  // Client events: a token bucket in thousandths of an event.
  uint32_t client_event_credit = 0;
  uint32_t client_event_at_ms = 0;
  std::string user_id;  // after pusher:signin
  struct Subscription {
    std::string channel;
    std::string presence_user;  // the member it brought to a presence channel
  };
  std::vector<Subscription> subscriptions;

  Subscription* find(std::string_view channel) {
    for (auto& s : subscriptions) {
      if (s.channel == channel) return &s;
    }
    return nullptr;
  }
};

struct LoopHub {
  explicit LoopHub(Hub::Impl& impl);
  ~LoopHub();

  Hub::Impl& hub;
  ClientMessageParser parser;
  PresenceParser presence_parser;
  ApiRequestVerifier verifier;
  ApiBodyParser body_parser;
  std::vector<std::unique_ptr<AppSigner>> signers;  // by AppState::index
  std::vector<Connection> connections;               // for the activity sweep
  // Signed-in users' connections, for terminate_connections: (app, user) -> handles.
  std::map<std::pair<size_t, std::string>, std::vector<Connection>> users;
  std::string out;  // scratch for encoding
  Loop::TimerId sweep_timer = 0;
  Loop* loop = nullptr;
  Loop::Clock::time_point epoch = Loop::Clock::now();
  uint32_t now_ms() const noexcept;
};

}  // namespace windlass::channels

struct windlass::channels::Hub::Impl final : TopicObserver {
  Impl(App& app, std::vector<AppConfig> apps, HubOptions options);
  ~Impl() override;

  App& app;
  HubOptions options;
  std::vector<std::unique_ptr<AppState>> apps;
  std::unordered_map<std::string, AppState*> by_key, by_id;
  PresenceRegistry presence;
  EventCache cache;
  std::unique_ptr<LoopLocal<LoopHub>> loops;
  std::unique_ptr<Webhooks> webhooks;
  std::unique_ptr<ClusterState> cluster;  // set when the hub is one node of several
  bool clustered() const;  // cluster set and Redis answering

  AppState* app_for_topic(std::string_view topic, std::string_view* channel) const;

  // Publishes an encoded event to a channel of an app, on every loop (and
  // node, through the App's broker); counts it.
  void publish(AppState& app, std::string_view channel, std::string_view event_json, uint64_t except = 0,
               uint32_t origin = 0);
  void webhook(AppState& app, std::string json, bool delayed_kind, std::string_view dedup_key = {});

  void channel_webhook(std::string_view topic, bool occupied);

  // TopicObserver: a channel's first subscriber in the process, and its last.
  void on_topic_occupied(std::string_view topic) override;
  void on_topic_vacated(std::string_view topic) override;
};
