// The channels hub: the Pusher Channels protocol 7 on a windlass App, so
// pusher-js, Laravel Echo and every Pusher server SDK work unchanged.
// Library windlass_channels; an application built on windlass's public API.
//
//   windlass::App app(options);
//   windlass::channels::Hub hub(app, {{.id = "app-id", .key = "app-key", .secret = "app-secret",
//                                      .client_events = true}});
//   app.run();
//
// It adds to the App:
//   ws(s)://host/app/{key}?protocol=7     the WebSocket endpoint
//   /apps/{id}/events, /batch_events, /channels, /channels/{name},
//   /channels/{name}/users, /users/{id}/terminate_connections
//                                         the HTTP API, signed as Pusher signs it
// Channels are topics of the App's broker ("<app id>:<channel>"), so a
// bridge installed with App::set_broker() carries them to other nodes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/app.hpp"
#include "windlass/ws_options.hpp"

namespace windlass::channels {

// Where and what an app's webhooks go to.
struct WebhookTarget {
  std::string url;
  // Events to send: channel_occupied, channel_vacated, member_added,
  // member_removed, client_event, cache_miss. Empty: all of them.
  std::vector<std::string> events;
};

struct AppConfig {
  std::string id;      // 1-64 of [-a-zA-Z0-9_.]
  std::string key;     // what clients connect with
  std::string secret;  // signs subscriptions, sign-ins, API calls and webhooks
  bool enabled = true;                 // false: connections closed with 4003
  bool client_events = false;          // client-* events on private and presence channels
  bool user_authentication = true;     // pusher:signin
  size_t max_connections = 0;          // per app, over the process; 0: no limit (over: 4004)
  size_t max_presence_members = 100;   // per presence channel
  size_t max_user_info_bytes = 1024;   // of a presence member's user_info
  size_t max_event_bytes = 10 * 1024;  // data of one event (API: 413; client event: error)
  size_t max_channels_per_event = 100;
  size_t max_batch_events = 10;
  uint32_t client_events_per_second = 10;  // per connection; over it: close 4301
  std::vector<std::string> allowed_origins;  // empty: any
  std::vector<WebhookTarget> webhooks;
};

// Several nodes as one hub: what the hub needs of a Redis (the bridge of
// windlass/redis.hpp gives it: RedisBridge::command). With it, presence
// members, subscription counts, the channels list and the cache channels'
// last events are the cluster's, kept in Redis hashes next to each node's
// entries; a node refreshes its entries on a heartbeat, and when a node
// dies the others remove its members within node_timeout plus a heartbeat
// and tell its channels' subscribers once. Webhooks fire once per cluster.
struct ClusterOptions {
  // Runs one Redis command for `key`'s node (any thread); the answer, a
  // flattened reply or an error, comes on any thread.
  using Reply = std::function<void(const std::vector<std::string>& reply, std::string_view error)>;
  std::function<void(std::string key, std::vector<std::string> args, Reply reply)> redis;
  std::function<bool()> connected;  // is Redis there now
  std::string key_prefix = "windlass:";
  std::chrono::milliseconds heartbeat{2000};
  std::chrono::milliseconds node_timeout{6000};  // a node not heard from this long is dead
};

struct HubOptions {
  std::string websocket_prefix = "/app";  // the endpoint is <prefix>/:key (the API is at /apps/: it is signed so)
  // Said to clients in connection_established; after this long without a
  // message the server pings (pusher:ping) and closes with 4201 when
  // nothing comes back within pong_timeout.
  std::chrono::seconds activity_timeout{120};
  std::chrono::seconds pong_timeout{30};
  // How far an API request's auth_timestamp may be from the server's clock.
  std::chrono::seconds api_timestamp_skew{600};
  // channel_vacated and member_removed webhooks wait this long, so a quick
  // reconnect fires neither (nor the channel_occupied / member_added after).
  std::chrono::milliseconds webhook_delay{3000};
  size_t webhook_queue = 10000;  // events waiting to be sent, over all apps; past it: dropped, counted
  size_t webhook_batch = 50;     // events per POST
  unsigned webhook_retries = 3;  // after the first try, with backoff (1 s, 2 s, 4 s, ...)
  std::chrono::milliseconds webhook_timeout{5000};
  // Set: the hub is one of several nodes (see ClusterOptions).
  std::shared_ptr<ClusterOptions> cluster;
  // The route's WebSocket options (message size, compression, ...).
  // Protocol-level pings replace RFC 6455 keepalive on this route.
  WsOptions ws = default_ws_options();

  static WsOptions default_ws_options() {
    WsOptions o;
    o.max_message_size = 64 * 1024;
    o.ping_interval = std::chrono::milliseconds(0);
    o.shutdown_close_code = 4200;  // Pusher's "reconnect now"
    o.shutdown_close_reason = "server restarting";
    return o;
  }
};

// Counters per app, for /metrics. A snapshot: every field read separately.
struct AppStats {
  uint64_t connections = 0;        // open now
  uint64_t connections_total = 0;  // since start
  uint64_t channels = 0;           // with at least one subscriber in this process
  uint64_t presence_members = 0;   // distinct users over presence channels
  uint64_t messages_in = 0;        // client messages received
  uint64_t messages_out = 0;       // events published (API, client events, presence), per channel
  uint64_t client_events = 0;
  std::map<int, uint64_t> api_calls;  // by HTTP status
  uint64_t webhooks_sent = 0;      // POSTs answered 2xx
  uint64_t webhooks_failed = 0;    // POSTs that failed after every retry
  uint64_t webhooks_dropped = 0;   // events dropped: the queue was full
  std::map<std::string, uint64_t> auth_failures;  // by reason
  std::map<uint16_t, uint64_t> closes;            // Pusher close codes the server sent
};

class Hub {
 public:
  // Before app.run(): adds the routes, the loop hooks and a broker
  // observer. Throws std::invalid_argument on a bad app (empty or repeated
  // id or key, a bad webhook URL, ...), naming it.
  Hub(App& app, std::vector<AppConfig> apps, HubOptions options = {});
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Any thread. Publishes event `name` with `data` (a string: JSON text
  // goes as a string, as the HTTP API's data does) to `channel` of app
  // `app_id`, except to the connection named by `except_socket_id`. With
  // `origin` 0 it goes everywhere the App's broker reaches (every node,
  // with a bridge); an input that every node consumes itself (Laravel's
  // Redis broadcaster, a RabbitMQ queue per node) passes its own non-zero
  // tag so that a bridge does not carry it again. False, with `error` set,
  // for an unknown app, a bad channel or event name, or data over the
  // app's limit.
  bool publish(std::string_view app_id, std::string_view channel, std::string_view name, std::string_view data,
               std::string_view except_socket_id = {}, uint32_t origin = 0, std::string* error = nullptr);

  // Any thread. Publishes a web app's broadcast payload,
  // {"event": "<name>", "data": <JSON>, "socket": "<socket_id>" | null}
  // (what Laravel's Redis broadcaster PUBLISHes), to `channel`: `data` goes
  // to clients as a JSON string, as Laravel's Pusher driver sends it.
  bool publish_payload(std::string_view app_id, std::string_view channel, std::string_view payload,
                       uint32_t origin = 0, std::string* error = nullptr);

  // Any thread.
  std::map<std::string, AppStats> stats() const;
  const HubOptions& options() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The socket_id of a connection ("<node>.<counter>", what pusher-js and
// the SDKs expect), and back; 0 for a malformed one.
std::string socket_id_of(uint64_t connection_id);
uint64_t connection_id_of(std::string_view socket_id) noexcept;

}  // namespace windlass::channels
