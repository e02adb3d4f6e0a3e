// The hub's WebSocket side: the /app/{key} endpoint, a component whose
// state is a PusherConn, speaking protocol 7 to pusher-js and Laravel Echo.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "channels/broadcast_payload.hpp"
#include "channels/cluster_state.hpp"
#include "channels/hub_internal.hpp"
#include "channels/webhooks.hpp"

namespace windlass::channels {

namespace {

constexpr uint32_t kCreditPerEvent = 1000;  // client-event budget unit: a thousandth of an event

const char* reason_of(PusherClose c) {
  switch (c) {
    case PusherClose::app_not_found: return "application does not exist";
    case PusherClose::app_disabled: return "application disabled";
    case PusherClose::over_quota: return "application is over its connection quota";
    case PusherClose::unsupported_protocol: return "unsupported protocol version";
    case PusherClose::no_protocol: return "no protocol version given";
    case PusherClose::unauthorized: return "connection is unauthorized";
    case PusherClose::reconnect_now: return "server restarting";
    case PusherClose::pong_not_received: return "pong reply not received";
    case PusherClose::client_event_rate: return "client event rate limit exceeded";
  }
  return "closed";
}

bool is_valid_id(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

}  // namespace

// ------------------------------------------------------------ socket ids

std::string socket_id_of(uint64_t connection_id) {
  return std::to_string(Connection::node_of(connection_id)) + "." +
         std::to_string(Connection::counter_of(connection_id));
}

uint64_t connection_id_of(std::string_view socket_id) noexcept {
  const size_t dot = socket_id.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= socket_id.size()) return 0;
  uint64_t node = 0, counter = 0;
  auto a = std::from_chars(socket_id.data(), socket_id.data() + dot, node);
  auto b = std::from_chars(socket_id.data() + dot + 1, socket_id.data() + socket_id.size(), counter);
  if (a.ec != std::errc() || a.ptr != socket_id.data() + dot || b.ec != std::errc() ||
      b.ptr != socket_id.data() + socket_id.size()) {
    return 0;
  }
  if (node >= (uint64_t{1} << Connection::kNodeIdBits) || counter >= (uint64_t{1} << Connection::kCounterBits)) return 0;
  return (node << Connection::kCounterBits) | counter;
}

// ------------------------------------------------------------ presence

PresenceRegistry::Join PresenceRegistry::join(const std::string& topic, const std::string& user_id,
                                              const std::string& user_info, size_t max_members,
                                              std::vector<std::pair<std::string, std::string>>* members) {
  std::lock_guard lock(mu_);
  auto& channel = channels_[topic];
  auto it = channel.find(user_id);
  Join result = Join::already_member;
  if (it == channel.end()) {
    if (max_members != 0 && channel.size() >= max_members) {
      if (channel.empty()) channels_.erase(topic);
      return Join::full;
    }
    it = channel.emplace(user_id, Member{user_info, 0}).first;
    result = Join::added;
  }
  ++it->second.connections;
  if (members != nullptr) {
    members->clear();
    members->reserve(channel.size());
    for (const auto& [id, m] : channel) members->emplace_back(id, m.user_info);
  }
  return result;
}

bool PresenceRegistry::leave(const std::string& topic, const std::string& user_id) {
  std::lock_guard lock(mu_);
  auto c = channels_.find(topic);
  if (c == channels_.end()) return false;
  auto it = c->second.find(user_id);
  if (it == c->second.end()) return false;
  if (--it->second.connections != 0) return false;
  c->second.erase(it);
  if (c->second.empty()) channels_.erase(c);
  return true;
}

std::vector<std::pair<std::string, std::string>> PresenceRegistry::members(const std::string& topic) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  auto c = channels_.find(topic);
  if (c == channels_.end()) return out;
  for (const auto& [id, m] : c->second) out.emplace_back(id, m.user_info);
  return out;
}

size_t PresenceRegistry::user_count(const std::string& topic) const {
  std::lock_guard lock(mu_);
  auto c = channels_.find(topic);
  return c == channels_.end() ? 0 : c->second.size();
}

std::map<std::string, std::vector<std::pair<std::string, std::string>>> PresenceRegistry::snapshot() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  for (const auto& [topic, members] : channels_) {
    auto& v = out[topic];
    for (const auto& [id, m] : members) v.emplace_back(id, m.user_info);
  }
  return out;
}

size_t PresenceRegistry::member_count(std::string_view prefix) const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [topic, members] : channels_) {
    if (std::string_view(topic).starts_with(prefix)) n += members.size();
  }
  return n;
}

// ------------------------------------------------------------ LoopHub

namespace {

// The parsers are shared by every app of the loop, so they take the largest
// of the apps' limits, and each app's own is checked after them (here and in
// http_api.cpp). With Pusher's defaults as theirs, they would refuse what an
// app's config allows.
ClientMessageLimits client_limits_for(const Hub::Impl& impl) {
  ClientMessageLimits limits{.max_message_size = impl.options.ws.max_message_size};
  for (const auto& app : impl.apps) {
    limits.max_data_size = std::max(limits.max_data_size, app->config.max_event_bytes);
    // channel_data is the user_id and user_info with their JSON around them.
    limits.max_channel_data = std::max(limits.max_channel_data, app->config.max_user_info_bytes + 1024);
  }
  return limits;
}

PresenceLimits presence_limits_for(const Hub::Impl& impl) {
  PresenceLimits limits;
  for (const auto& app : impl.apps) {
    limits.max_user_info = std::max(limits.max_user_info, app->config.max_user_info_bytes);
  }
  return limits;
}

ApiBodyLimits body_limits_for(const Hub::Impl& impl) {
  ApiBodyLimits limits;
  for (const auto& app : impl.apps) {
    limits.max_data_size = std::max(limits.max_data_size, app->config.max_event_bytes);
    limits.max_channels = std::max(limits.max_channels, app->config.max_channels_per_event);
    limits.max_batch_size = std::max(limits.max_batch_size, app->config.max_batch_events);
  }
  return limits;
}

}  // namespace

LoopHub::LoopHub(Hub::Impl& impl)
    : hub(impl),
      parser(client_limits_for(impl)),
      presence_parser(presence_limits_for(impl)),
      verifier(ApiAuthOptions{.max_clock_skew = impl.options.api_timestamp_skew.count()}),
      body_parser(body_limits_for(impl)) {
  for (const auto& app : impl.apps) {
    signers.push_back(std::make_unique<AppSigner>(app->config.key, app->config.secret));
  }
}

LoopHub::~LoopHub() = default;

uint32_t LoopHub::now_ms() const noexcept {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Loop::Clock::now() - epoch).count());
}

// ------------------------------------------------------------ the component

namespace {

class PusherEndpoint final : public Component<PusherConn> {
 public:
  explicit PusherEndpoint(Hub::Impl& hub) : hub_(hub) {}

  void on_upgrade(Upgrade& up) override;
  void on_upgrade_failed(Connection& conn, int status) override;
  void on_open(Connection& conn) override;
  void on_message(Connection& conn, const Message& msg) override;
  void on_close(Connection& conn, const CloseInfo& info) override;

  // Loop thread: the activity sweep of this loop's connections.
  void sweep(LoopHub& loop);

 private:
  LoopHub& loop() { return hub_.loops->get(); }
  void send_error(Connection& conn, uint16_t code, std::string_view message);
  void close_with(Connection& conn, PusherClose code, std::string_view why = {});
  void subscribe(Connection& conn, PusherConn& st, const ClientMessage& m);
  void unsubscribe(Connection& conn, PusherConn& st, std::string_view channel);
  void signin(Connection& conn, PusherConn& st, const ClientMessage& m);
  void client_event(Connection& conn, PusherConn& st, const ClientMessage& m);
  void subscription_error(Connection& conn, PusherConn& st, std::string_view channel, std::string_view type,
                          std::string_view error, uint16_t status, std::string_view counted_reason);
  void leave_presence(Connection& conn, AppState& app, const PusherConn::Subscription& sub);
  void member_removed(AppState& app, const std::string& channel, const std::string& user, uint64_t except);
  void cache_reply(Connection& conn, AppState& app, std::string_view channel, const std::optional<std::string>& last);
  void presence_succeeded(Connection& conn, AppState& app, std::string_view channel,
                          const std::vector<std::pair<std::string, std::string>>& members, const PresenceMember* added);
  void cluster_presence(Connection& conn, AppState& app, std::string channel, PresenceMember member, bool added_here);
  void forget(Connection& conn, PusherConn& st);

  Hub::Impl& hub_;
};

void PusherEndpoint::on_upgrade(Upgrade& up) {
  PusherConn& st = state(up.connection());
  const Request& r = up.request();
  auto key = r.param("key");
  auto it = key ? hub_.by_key.find(std::string(*key)) : hub_.by_key.end();
  // Pusher clients expect a close code, not an HTTP refusal (on which they
  // retry with backoff, forever): the connection opens, then closes with
  // the protocol's code for what is wrong.
  if (it == hub_.by_key.end()) {
    st.refuse = PusherClose::app_not_found;
    return up.accept();
  }
  AppState& app = *it->second;
  auto protocol = r.query_param("protocol");
  if (!app.config.enabled) {
    st.refuse = PusherClose::app_disabled;
  } else if (!protocol || protocol->empty()) {
    st.refuse = PusherClose::no_protocol;
  } else if (*protocol != "7") {
    st.refuse = PusherClose::unsupported_protocol;
  } else if (!app.config.allowed_origins.empty()) {
    auto origin = r.header("origin");
    const bool ok = origin && std::find(app.config.allowed_origins.begin(), app.config.allowed_origins.end(),
                                        std::string(*origin)) != app.config.allowed_origins.end();
    if (!ok) {
      app.counters.count_auth_failure("origin not allowed");
      st.refuse = PusherClose::unauthorized;
    }
  }
  if (st.refuse == PusherClose{} && app.config.max_connections != 0) {
    if (app.counters.connections.fetch_add(1) >= app.config.max_connections) {
      app.counters.connections.fetch_sub(1);
      st.refuse = PusherClose::over_quota;
    } else {
      st.app = &app;  // counted
    }
  } else if (st.refuse == PusherClose{}) {
    app.counters.connections.fetch_add(1);
    st.app = &app;
  }
  if (st.refuse != PusherClose{}) st.app = &app;  // for its counters; not counted as a connection
  up.accept();
}

void PusherEndpoint::on_upgrade_failed(Connection& conn, int) {
  PusherConn& st = state(conn);
  if (st.app != nullptr && st.refuse == PusherClose{}) st.app->counters.connections.fetch_sub(1);
}

void PusherEndpoint::close_with(Connection& conn, PusherClose code, std::string_view why) {
  PusherConn& st = state(conn);
  if (st.app != nullptr) st.app->counters.count_close(static_cast<uint16_t>(code));
  std::string_view reason = why.empty() ? reason_of(code) : why;
  send_error(conn, static_cast<uint16_t>(code), reason);
  conn.close(static_cast<uint16_t>(code), reason);
}

void PusherEndpoint::send_error(Connection& conn, uint16_t code, std::string_view message) {
  std::string& out = loop().out;
  out.clear();
  append_error(out, code, message);
  conn.send(out);
}

void PusherEndpoint::on_open(Connection& conn) {
  PusherConn& st = state(conn);
  if (st.refuse != PusherClose{}) return close_with(conn, st.refuse);
  LoopHub& l = loop();
  st.app->counters.connections_total.fetch_add(1, std::memory_order_relaxed);
  st.last_in_ms = l.now_ms();
  st.client_event_at_ms = st.last_in_ms;
  st.client_event_credit = st.app->config.client_events_per_second * kCreditPerEvent;
  st.sweep_index = static_cast<uint32_t>(l.connections.size());
  l.connections.push_back(conn);
  l.out.clear();
  append_connection_established(l.out, socket_id_of(conn.id()),
                                static_cast<uint32_t>(hub_.options.activity_timeout.count()));
  conn.send(l.out);
}

void PusherEndpoint::forget(Connection& conn, PusherConn& st) {
  LoopHub& l = loop();
  if (st.sweep_index < l.connections.size() && l.connections[st.sweep_index] == conn) {
    const uint32_t i = st.sweep_index;
    l.connections[i] = l.connections.back();
    l.connections.pop_back();
    if (i < l.connections.size()) state(l.connections[i]).sweep_index = i;
  }
  st.sweep_index = UINT32_MAX;
  if (!st.user_id.empty() && st.app != nullptr) {
    auto it = l.users.find({st.app->index, st.user_id});
    if (it != l.users.end()) {
      std::erase(it->second, conn);
      if (it->second.empty()) l.users.erase(it);
    }
  }
}

void PusherEndpoint::on_close(Connection& conn, const CloseInfo&) {
  PusherConn& st = state(conn);
  if (st.app == nullptr || st.refuse != PusherClose{}) return;
  forget(conn, st);
  // The broker takes the connection off its topics by itself; presence
  // members are the hub's.
  for (const auto& sub : st.subscriptions) {
    if (!sub.presence_user.empty()) leave_presence(conn, *st.app, sub);
  }
  st.subscriptions.clear();
  st.app->counters.connections.fetch_sub(1);
}

void PusherEndpoint::on_message(Connection& conn, const Message& msg) {
  PusherConn& st = state(conn);
  if (st.app == nullptr || st.refuse != PusherClose{}) return;
  LoopHub& l = loop();
  st.last_in_ms = l.now_ms();
  st.ping_sent = false;
  st.app->counters.messages_in.fetch_add(1, std::memory_order_relaxed);
  if (msg.is_binary()) return send_error(conn, 4200, "binary frames are not part of the protocol");
  ClientMessage m;
  // The receive buffer (and a reassembled message) has the padding simdjson
  // reads past the end: parsed in place, without a copy.
  const ClientMessageError e = l.parser.parse_padded(msg.data, m);
  if (e != ClientMessageError::none) {
    const ClientErrorReply reply = reply_for(e);
    if (reply.close) {
      conn.close(reply.code, describe(e));
    } else {
      send_error(conn, reply.code, describe(e));
    }
    return;
  }
  switch (m.kind) {
    case ClientEvent::ping:
      l.out.clear();
      append_pong(l.out);
      conn.send(l.out);
      return;
    case ClientEvent::pong: return;  // liveness is any message: done above
    case ClientEvent::subscribe: return subscribe(conn, st, m);
    case ClientEvent::unsubscribe: return unsubscribe(conn, st, m.channel);
    case ClientEvent::signin: return signin(conn, st, m);
    case ClientEvent::client_event: return client_event(conn, st, m);
  }
}

void PusherEndpoint::subscription_error(Connection& conn, PusherConn& st, std::string_view channel,
                                        std::string_view type, std::string_view error, uint16_t status,
                                        std::string_view counted_reason) {
  st.app->counters.count_auth_failure(counted_reason);
  std::string& out = loop().out;
  out.clear();
  append_subscription_error(out, channel, type, error, status);
  conn.send(out);
}

void PusherEndpoint::subscribe(Connection& conn, PusherConn& st, const ClientMessage& m) {
  LoopHub& l = loop();
  AppState& app = *st.app;
  const std::string socket_id = socket_id_of(conn.id());
  if (m.channel_info.needs_auth()) {
    AuthError a = l.signers[app.index]->verify_channel(m.channel_info.type, m.auth, socket_id, m.channel,
                                                        m.channel_data);
    if (a != AuthError::none) {
      return subscription_error(conn, st, m.channel, "AuthError",
                                std::string("invalid signature: ") + describe(a), 401, describe(a));
    }
  }
  const std::string topic = app.topic(m.channel);
  if (PusherConn::Subscription* existing = st.find(m.channel)) {
    // Subscribed already (a client that lost track): answered again, changing nothing.
    l.out.clear();
    if (existing->presence_user.empty()) {
      append_subscription_succeeded(l.out, m.channel);
    } else {
      auto members = hub_.presence.members(topic);
      std::vector<PresenceMemberView> views;
      for (auto& [id, info] : members) views.push_back({id, info});
      append_presence_subscription_succeeded(l.out, m.channel, views);
    }
    conn.send(l.out);
    return;
  }
  PusherConn::Subscription sub{std::string(m.channel), {}};
  std::vector<std::pair<std::string, std::string>> members;
  bool added = false;
  PresenceMember member;
  const bool clustered = hub_.clustered();
  if (m.channel_info.type == ChannelType::presence) {
    if (!m.has_channel_data) {
      return subscription_error(conn, st, m.channel, "AuthError", "presence channels need channel_data", 400,
                                "missing channel_data");
    }
    const MemberDataError d = l.presence_parser.parse_channel_data(m.channel_data, member);
    if (d != MemberDataError::none) {
      return subscription_error(conn, st, m.channel, "AuthError", std::string("invalid channel_data: ") + describe(d),
                                400, describe(d));
    }
    if (member.user_info.size() > app.config.max_user_info_bytes) {
      return subscription_error(conn, st, m.channel, "LimitReached", "user_info is too large", 413,
                                "user_info too large");
    }
    // In a cluster the member limit is the cluster's, checked in Redis.
    auto join = hub_.presence.join(topic, member.user_id, member.user_info,
                                   clustered ? 0 : app.config.max_presence_members, &members);
    if (join == PresenceRegistry::Join::full) {
      return subscription_error(conn, st, m.channel, "LimitReached", "the presence channel is full", 403,
                                "presence channel full");
    }
    added = join == PresenceRegistry::Join::added;
    sub.presence_user = member.user_id;
  }
  if (!conn.subscribe(topic)) {
    if (!sub.presence_user.empty()) hub_.presence.leave(topic, sub.presence_user);
    return;
  }
  st.subscriptions.push_back(std::move(sub));
  if (m.channel_info.type == ChannelType::presence) {
    if (clustered) {
      cluster_presence(conn, app, std::string(m.channel), std::move(member), added);
    } else {
      presence_succeeded(conn, app, m.channel, members, added ? &member : nullptr);
    }
  } else {
    l.out.clear();
    append_subscription_succeeded(l.out, m.channel);
    conn.send(l.out);
  }
  if (m.channel_info.cache) {
    if (clustered) {
      hub_.cluster->cache_get(topic, [this, conn, ap = &app, channel = std::string(m.channel)](
                                         bool ok, std::optional<std::string> last) {
        conn.loop()->post([this, conn, ap, channel, ok, last = std::move(last)] {
          Connection c = conn;
          if (!c.is_open()) return;
          cache_reply(c, *ap, channel, ok ? last : hub_.cache.get(ap->topic(channel)));
        });
      });
    } else {
      cache_reply(conn, app, m.channel, hub_.cache.get(topic));
    }
  }
}

void PusherEndpoint::cache_reply(Connection& conn, AppState& app, std::string_view channel,
                                 const std::optional<std::string>& last) {
  if (last) {
    conn.send(*last);
    return;
  }
  LoopHub& l = loop();
  l.out.clear();
  append_cache_miss(l.out, channel);
  conn.send(l.out);
  if (app.wants_webhook("cache_miss")) {
    std::string w = "{\"name\":\"cache_miss\",\"channel\":";
    append_json_string(w, channel);
    w += '}';
    hub_.webhook(app, std::move(w), false);
  }
}

void PusherEndpoint::presence_succeeded(Connection& conn, AppState& app, std::string_view channel,
                                        const std::vector<std::pair<std::string, std::string>>& members,
                                        const PresenceMember* added) {
  LoopHub& l = loop();
  std::vector<PresenceMemberView> views;
  views.reserve(members.size());
  for (auto& [id, info] : members) views.push_back({id, info});
  l.out.clear();
  append_presence_subscription_succeeded(l.out, channel, views);
  conn.send(l.out);
  if (added == nullptr) return;
  // A new member: the channel's other subscribers hear of it, once.
  std::string event;
  append_member_added(event, channel, PresenceMemberView{added->user_id, added->user_info});
  hub_.publish(app, channel, event, conn.id());
  if (app.wants_webhook("member_added")) {
    std::string w = "{\"name\":\"member_added\",\"channel\":";
    append_json_string(w, channel);
    w += ",\"user_id\":";
    append_json_string(w, added->user_id);
    w += '}';
    hub_.webhook(app, std::move(w), false, std::string("member:") + app.topic(channel) + "\n" + added->user_id);
  }
}

// A presence subscription in a cluster: the members (and whether this one
// is new) come from Redis, on the bridge's loop; the answer goes out on
// the connection's own loop, if it is still there and still subscribed.
void PusherEndpoint::cluster_presence(Connection& conn, AppState& app, std::string channel, PresenceMember member,
                                      bool added_here) {
  const std::string topic = app.topic(channel);
  auto finish = [this, conn, ap = &app, channel, member](bool ok, bool full, bool new_member,
                                                          std::vector<std::pair<std::string, std::string>> members) {
    conn.loop()->post([this, conn, ap, channel, member, ok, full, new_member, members = std::move(members)]() mutable {
      Connection c = conn;
      AppState& a = *ap;
      if (!c.is_open()) return;
      PusherConn& st = state(c);
      PusherConn::Subscription* sub = st.find(channel);
      if (sub == nullptr || sub->presence_user != member.user_id) return;
      const std::string t = a.topic(channel);
      if (!ok) {
        // Redis failed: this node's own view, said as is.
        presence_succeeded(c, a, channel, hub_.presence.members(t), new_member ? &member : nullptr);
        return;
      }
      if (full) {
        std::erase_if(st.subscriptions, [&](const PusherConn::Subscription& s) { return s.channel == channel; });
        c.unsubscribe(t);
        hub_.presence.leave(t, member.user_id);
        subscription_error(c, st, channel, "LimitReached", "the presence channel is full", 403,
                           "presence channel full");
        return;
      }
      presence_succeeded(c, a, channel, members, new_member ? &member : nullptr);
    });
  };
  if (added_here) {
    hub_.cluster->join(topic, member.user_id, member.user_info, app.config.max_presence_members,
                       [finish](ClusterState::JoinResult j) {
                         finish(j.ok, j.full, j.ok ? j.new_member : true, std::move(j.members));
                       });
  } else {
    hub_.cluster->members(topic, [finish](bool ok, ClusterState::Members members) {
      finish(ok, false, false, std::move(members));
    });
  }
}

void PusherEndpoint::leave_presence(Connection& conn, AppState& app, const PusherConn::Subscription& sub) {
  const std::string topic = app.topic(sub.channel);
  if (!hub_.presence.leave(topic, sub.presence_user)) return;  // the user has another connection here
  if (hub_.clustered()) {
    // Gone from this node: gone from the channel only if no other node has the user.
    hub_.cluster->leave(topic, sub.presence_user,
                        [this, ap = &app, channel = sub.channel, user = sub.presence_user, except = conn.id()](
                            bool ok, bool gone) {
                          if (!ok || gone) member_removed(*ap, channel, user, except);
                        });
    return;
  }
  member_removed(app, sub.channel, sub.presence_user, conn.id());
}

void PusherEndpoint::member_removed(AppState& app, const std::string& channel, const std::string& user,
                                    uint64_t except) {
  const std::string topic = app.topic(channel);
  const PusherConn::Subscription s{channel, user};
  const PusherConn::Subscription& sub = s;
  std::string event;
  append_member_removed(event, sub.channel, sub.presence_user);
  hub_.publish(app, sub.channel, event, except);
  if (app.wants_webhook("member_removed")) {
    std::string w = "{\"name\":\"member_removed\",\"channel\":";
    append_json_string(w, sub.channel);
    w += ",\"user_id\":";
    append_json_string(w, sub.presence_user);
    w += '}';
    hub_.webhook(app, std::move(w), true, std::string("member:") + topic + "\n" + sub.presence_user);
  }
}

void PusherEndpoint::unsubscribe(Connection& conn, PusherConn& st, std::string_view channel) {
  auto it = std::find_if(st.subscriptions.begin(), st.subscriptions.end(),
                         [&](const PusherConn::Subscription& s) { return s.channel == channel; });
  if (it == st.subscriptions.end()) return;  // no reply, as the protocol has it
  PusherConn::Subscription sub = std::move(*it);
  st.subscriptions.erase(it);
  conn.unsubscribe(st.app->topic(channel));
  if (!sub.presence_user.empty()) leave_presence(conn, *st.app, sub);
}

void PusherEndpoint::signin(Connection& conn, PusherConn& st, const ClientMessage& m) {
  LoopHub& l = loop();
  AppState& app = *st.app;
  if (!app.config.user_authentication) {
    return send_error(conn, kUnauthorizedCode, "user authentication is disabled for this app");
  }
  AuthError a = l.signers[app.index]->verify_user(m.auth, socket_id_of(conn.id()), m.user_data);
  if (a != AuthError::none) {
    app.counters.count_auth_failure(std::string("signin: ") + describe(a));
    return send_error(conn, kUnauthorizedCode, std::string("invalid signin signature: ") + describe(a));
  }
  SigninUser user;
  if (MemberDataError d = l.presence_parser.parse_user_data(m.user_data, user); d != MemberDataError::none) {
    app.counters.count_auth_failure(std::string("signin: ") + describe(d));
    return send_error(conn, kUnauthorizedCode, std::string("invalid user_data: ") + describe(d));
  }
  if (!st.user_id.empty()) {
    auto it = l.users.find({app.index, st.user_id});
    if (it != l.users.end()) std::erase(it->second, conn);
  }
  st.user_id = user.id;
  l.users[{app.index, st.user_id}].push_back(conn);
  l.out.clear();
  append_signin_success(l.out, m.user_data);
  conn.send(l.out);
}

void PusherEndpoint::client_event(Connection& conn, PusherConn& st, const ClientMessage& m) {
  AppState& app = *st.app;
  LoopHub& l = loop();
  if (!app.config.client_events) return send_error(conn, kUnauthorizedCode, "client events are not enabled for this app");
  if (!m.channel_info.allows_client_events()) {
    return send_error(conn, kUnauthorizedCode, "client events are only allowed on private and presence channels");
  }
  PusherConn::Subscription* sub = st.find(m.channel);
  if (sub == nullptr) return send_error(conn, kUnauthorizedCode, "client events need a subscription to the channel");
  if (m.data.size() > app.config.max_event_bytes) return send_error(conn, 4200, "client event data is too large");
  // The budget: client_events_per_second, refilled continuously, at most one second's worth.
  const uint32_t now = l.now_ms();
  const uint32_t cap = app.config.client_events_per_second * kCreditPerEvent;
  const uint64_t refill = uint64_t{now - st.client_event_at_ms} * app.config.client_events_per_second;
  st.client_event_credit = static_cast<uint32_t>(std::min<uint64_t>(cap, st.client_event_credit + refill));
  st.client_event_at_ms = now;
  if (st.client_event_credit < kCreditPerEvent) return close_with(conn, PusherClose::client_event_rate);
  st.client_event_credit -= kCreditPerEvent;
  app.counters.client_events.fetch_add(1, std::memory_order_relaxed);
  std::string event;
  append_channel_event_json(event, m.event, m.channel, m.data.empty() ? std::string_view("{}") : m.data,
                            sub->presence_user);
  hub_.publish(app, m.channel, event, conn.id());  // never echoed to the sender
  if (app.wants_webhook("client_event")) {
    std::string w = "{\"name\":\"client_event\",\"channel\":";
    append_json_string(w, m.channel);
    w += ",\"event\":";
    append_json_string(w, m.event);
    w += ",\"data\":";
    append_json_string(w, m.data);
    w += ",\"socket_id\":";
    append_json_string(w, socket_id_of(conn.id()));
    if (!sub->presence_user.empty()) {
      w += ",\"user_id\":";
      append_json_string(w, sub->presence_user);
    }
    w += '}';
    hub_.webhook(app, std::move(w), false);
  }
}

void PusherEndpoint::sweep(LoopHub& l) {
  const uint32_t now = l.now_ms();
  const auto idle = static_cast<uint32_t>(hub_.options.activity_timeout.count() * 1000);
  const auto grace = static_cast<uint32_t>(hub_.options.pong_timeout.count() * 1000);
  // Collected first: closing changes the list.
  std::vector<Connection> late;
  for (Connection& c : l.connections) {
    PusherConn& st = state(c);
    const uint32_t quiet = now - st.last_in_ms;
    if (st.ping_sent) {
      if (quiet >= idle + grace) late.push_back(c);
    } else if (quiet >= idle) {
      l.out.clear();
      append_ping(l.out);
      c.send(l.out);
      st.ping_sent = true;
    }
  }
  for (Connection& c : late) close_with(c, PusherClose::pong_not_received);
}

}  // namespace

// ------------------------------------------------------------ Hub::Impl

Hub::Impl::Impl(App& a, std::vector<AppConfig> configs, HubOptions o) : app(a), options(std::move(o)) {
  if (configs.empty()) throw std::invalid_argument("channels: no app configured");
  for (auto& c : configs) {
    if (!is_valid_id(c.id, kMaxAppIdLength)) {
      throw std::invalid_argument("channels: app id \"" + c.id + "\": 1-64 of [-a-zA-Z0-9_.]");
    }
    if (!is_valid_id(c.key, 128)) throw std::invalid_argument("channels: app " + c.id + ": key: 1-128 of [-a-zA-Z0-9_.]");
    if (c.secret.empty()) throw std::invalid_argument("channels: app " + c.id + ": empty secret");
    if (c.client_events_per_second == 0 || c.client_events_per_second > 1000) {
      throw std::invalid_argument("channels: app " + c.id + ": client_events_per_second must be 1-1000");
    }
    for (const auto& w : c.webhooks) {
      if (!w.url.starts_with("http://") && !w.url.starts_with("https://")) {
        throw std::invalid_argument("channels: app " + c.id + ": webhook url \"" + w.url + "\" is not http(s)");
      }
      for (const auto& e : w.events) {
        static const std::set<std::string> kKnown = {"channel_occupied", "channel_vacated", "member_added",
                                                     "member_removed",   "client_event",    "cache_miss"};
        if (!kKnown.contains(e)) {
          throw std::invalid_argument("channels: app " + c.id + ": unknown webhook event \"" + e + "\"");
        }
      }
    }
    auto s = std::make_unique<AppState>();
    s->config = std::move(c);
    s->index = apps.size();
    s->topic_prefix = s->config.id + ":";
    for (const auto& w : s->config.webhooks) {
      if (w.events.empty()) {
        s->webhook_events.insert({"channel_occupied", "channel_vacated", "member_added", "member_removed",
                                  "client_event", "cache_miss"});
      }
      s->webhook_events.insert(w.events.begin(), w.events.end());
    }
    if (!by_id.emplace(s->config.id, s.get()).second) {
      throw std::invalid_argument("channels: app id \"" + s->config.id + "\" appears twice");
    }
    if (!by_key.emplace(s->config.key, s.get()).second) {
      throw std::invalid_argument("channels: app key \"" + s->config.key + "\" appears twice");
    }
    apps.push_back(std::move(s));
  }
  webhooks = std::make_unique<Webhooks>(*this);
  if (options.cluster) {
    if (!options.cluster->redis) throw std::invalid_argument("channels: a cluster needs a Redis command runner");
    cluster = std::make_unique<ClusterState>(*this, *options.cluster, app.node_id());
  }
}

bool Hub::Impl::clustered() const {
  return cluster && cluster->active();
}

Hub::Impl::~Impl() {
  app.broker().remove_observer(this);
}

AppState* Hub::Impl::app_for_topic(std::string_view topic, std::string_view* channel) const {
  const size_t colon = topic.find(':');
  if (colon == std::string_view::npos) return nullptr;
  auto it = by_id.find(std::string(topic.substr(0, colon)));
  if (it == by_id.end()) return nullptr;
  if (channel != nullptr) *channel = topic.substr(colon + 1);
  return it->second;
}

void Hub::Impl::publish(AppState& a, std::string_view channel, std::string_view event_json, uint64_t except,
                        uint32_t origin) {
  a.counters.messages_out.fetch_add(1, std::memory_order_relaxed);
  const std::string topic = a.topic(channel);
  if (classify_channel(channel).cache) {
    cache.put(topic, std::string(event_json));
    if (clustered()) cluster->cache_put(topic, std::string(event_json));
  }
  app.broker().publish(topic, Message{MessageKind::text, event_json}, PublishOptions{.except = except, .origin = origin});
}

void Hub::Impl::webhook(AppState& a, std::string json, bool delayed_kind, std::string_view dedup_key) {
  webhooks->push(a.index, std::move(json), delayed_kind, dedup_key);
}

void Hub::Impl::channel_webhook(std::string_view topic, bool occupied) {
  std::string_view channel;
  AppState* a = app_for_topic(topic, &channel);
  const char* name = occupied ? "channel_occupied" : "channel_vacated";
  if (a == nullptr || !a->wants_webhook(name)) return;
  std::string w = std::string("{\"name\":\"") + name + "\",\"channel\":";
  append_json_string(w, channel);
  w += '}';
  webhook(*a, std::move(w), !occupied, std::string("channel:") + std::string(topic));
}

// The local broker's first/last subscriber of a topic in this process. In
// a cluster, whether the channel became occupied or vacated is the
// cluster's question: asked from the first loop, since this runs under the
// broker's lock and the answer needs the broker again.
void Hub::Impl::on_topic_occupied(std::string_view topic) {
  if (cluster) {
    app.loop(0).post([this, t = std::string(topic)] {
      if (!clustered()) return channel_webhook(t, true);
      cluster->occupied(t, [this, t](bool first) {
        if (first) channel_webhook(t, true);
      });
    });
    return;
  }
  channel_webhook(topic, true);
}

void Hub::Impl::on_topic_vacated(std::string_view topic) {
  if (cluster) {
    app.loop(0).post([this, t = std::string(topic)] {
      if (!clustered()) return channel_webhook(t, false);
      cluster->vacated(t, [this, t](bool last) {
        if (last) channel_webhook(t, false);
      });
    });
    return;
  }
  channel_webhook(topic, false);
}

// ------------------------------------------------------------ Hub

void register_http_api(Hub::Impl& impl);  // http_api.cpp

Hub::Hub(App& app, std::vector<AppConfig> apps, HubOptions options)
    : impl_(std::make_unique<Impl>(app, std::move(apps), std::move(options))) {
  Impl& impl = *impl_;
  impl.loops = std::make_unique<LoopLocal<LoopHub>>(app, [&impl](Loop&) { return std::make_unique<LoopHub>(impl); });
  auto endpoint = std::make_shared<PusherEndpoint>(impl);
  app.route(impl.options.websocket_prefix + "/:key", endpoint, impl.options.ws);
  register_http_api(impl);
  // The activity sweep: each loop walks its own connections.
  const auto every = std::chrono::milliseconds(
      std::clamp<int64_t>(std::min(impl.options.activity_timeout, impl.options.pong_timeout).count() * 250, 100, 1000));
  app.on_loop_start([&impl, endpoint, every](Loop& loop) {
    LoopHub& l = impl.loops->get(loop);
    l.loop = &loop;
    l.sweep_timer = loop.add_timer(every, [endpoint, &l] { endpoint->sweep(l); }, every);
    if (loop.index() == 0) {
      impl.webhooks->start(loop);
      if (impl.cluster) impl.cluster->start(loop);
    }
  });
  app.on_loop_stop([&impl](Loop& loop) {
    LoopHub& l = impl.loops->get(loop);
    loop.cancel_timer(l.sweep_timer);
    if (loop.index() == 0) {
      if (impl.cluster) impl.cluster->stop();
      impl.webhooks->stop();
    }
  });
  app.broker().add_observer(&impl);
}

Hub::~Hub() = default;

bool Hub::publish(std::string_view app_id, std::string_view channel, std::string_view name, std::string_view data,
                  std::string_view except_socket_id, uint32_t origin, std::string* error) {
  auto fail = [&](std::string why) {
    if (error != nullptr) *error = std::move(why);
    return false;
  };
  auto it = impl_->by_id.find(std::string(app_id));
  if (it == impl_->by_id.end()) return fail("unknown app \"" + std::string(app_id) + "\"");
  AppState& a = *it->second;
  ChannelInfo info;
  if (ChannelNameError e = parse_channel_name(channel, info); e != ChannelNameError::none) {
    return fail(std::string("channel \"") + std::string(channel) + "\": " + describe(e));
  }
  if (name.empty() || name.size() > 200) return fail("an event name is 1-200 bytes");
  if (data.size() > a.config.max_event_bytes) {
    return fail("data is larger than " + std::to_string(a.config.max_event_bytes) + " bytes");
  }
  uint64_t except = 0;
  if (!except_socket_id.empty()) {
    if (validate_socket_id(except_socket_id) != SocketIdError::none) return fail("malformed socket id");
    except = connection_id_of(except_socket_id);
  }
  std::string event;
  append_channel_event(event, name, channel, data);
  impl_->publish(a, channel, event, except, origin);
  return true;
}

bool Hub::publish_payload(std::string_view app_id, std::string_view channel, std::string_view payload,
                          uint32_t origin, std::string* error) {
  // Any thread: a parser of the calling thread's own.
  thread_local BroadcastPayloadParser parser;
  BroadcastPayload p;
  if (BroadcastError e = parser.parse(payload, p); e != BroadcastError::none) {
    if (error != nullptr) *error = describe(e);
    return false;
  }
  return publish(app_id, channel, p.event, p.data, p.socket, origin, error);
}

const HubOptions& Hub::options() const noexcept {
  return impl_->options;
}

std::map<std::string, AppStats> Hub::stats() const {
  std::map<std::string, AppStats> out;
  const std::vector<std::string> topics = impl_->app.broker().topics();
  for (const auto& a : impl_->apps) {
    AppStats s;
    const AppCounters& c = a->counters;
    s.connections = c.connections.load();
    s.connections_total = c.connections_total.load();
    s.messages_in = c.messages_in.load();
    s.messages_out = c.messages_out.load();
    s.client_events = c.client_events.load();
    s.webhooks_sent = c.webhooks_sent.load();
    s.webhooks_failed = c.webhooks_failed.load();
    s.webhooks_dropped = c.webhooks_dropped.load();
    for (const auto& t : topics) s.channels += std::string_view(t).starts_with(a->topic_prefix);
    s.presence_members = impl_->presence.member_count(a->topic_prefix);
    {
      std::lock_guard lock(a->counters.mu);
      s.api_calls = c.api_calls;
      s.auth_failures = c.auth_failures;
      s.closes = c.closes;
    }
    out.emplace(a->config.id, std::move(s));
  }
  return out;
}

}  // namespace windlass::channels
