#include "channels/cluster_state.hpp"

#include <algorithm>
#include <charconv>

#include "channels/hub_internal.hpp"
#include "channels/json_text.hpp"
#include "channels/server_message.hpp"

namespace windlass::channels {

namespace {

// KEYS[1] presence hash; ARGV node, user, info, max members (0: none).
// Returns {status, field, info, field, info, ...} where status is the
// number of other nodes' entries for the user before (0: a new member),
// or -1 when the channel is full and the user is not in it.
constexpr std::string_view kJoin = R"lua(
local me = ARGV[1] .. ':' .. ARGV[2]
local all = redis.call('HGETALL', KEYS[1])
local others, users, present = 0, {}, false
for i = 1, #all, 2 do
  local f = all[i]
  local sep = string.find(f, ':', 1, true)
  local user = string.sub(f, sep + 1)
  users[user] = true
  if user == ARGV[2] then
    present = true
    if f ~= me then others = others + 1 end
  end
end
if not present and tonumber(ARGV[4]) > 0 then
  local n = 0
  for _ in pairs(users) do n = n + 1 end
  if n >= tonumber(ARGV[4]) then return {-1} end
end
redis.call('HSET', KEYS[1], me, ARGV[3])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, others)
return out
)lua";

// KEYS[1] presence hash; ARGV node, user. Returns the entries left for the user.
constexpr std::string_view kLeave = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
local left = 0
for i, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local sep = string.find(f, ':', 1, true)
  if string.sub(f, sep + 1) == ARGV[2] then left = left + 1 end
end
return left
)lua";

// KEYS[1] subs hash; ARGV node, count. Returns the other nodes with subscribers.
constexpr std::string_view kOccupy = R"lua(
local others = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return others
)lua";

// KEYS[1] subs hash; ARGV node. Returns the nodes with subscribers left.
constexpr std::string_view kVacate = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HLEN', KEYS[1])
)lua";

// KEYS[1] presence, KEYS[2] subs; ARGV dead node. Removes the node's
// entries; returns {nodes with subscribers left, whether the node had
// subscribers, users who had no other entry...}.
constexpr std::string_view kReap = R"lua(
local prefix = ARGV[1] .. ':'
local all = redis.call('HKEYS', KEYS[1])
local mine, others = {}, {}
for i, f in ipairs(all) do
  local sep = string.find(f, ':', 1, true)
  local user = string.sub(f, sep + 1)
  if string.sub(f, 1, #prefix) == prefix then
    table.insert(mine, user)
    redis.call('HDEL', KEYS[1], f)
  else
    others[user] = true
  end
end
local had = redis.call('HDEL', KEYS[2], ARGV[1])
local out = {redis.call('HLEN', KEYS[2]), had}
for i, user in ipairs(mine) do
  if not others[user] then table.insert(out, user) end
end
return out
)lua";

int64_t as_int(const std::string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// "node:user" fields and their infos to members, each user once.
ClusterState::Members members_of(const std::vector<std::string>& flat, size_t from) {
  std::map<std::string, std::string> users;
  for (size_t i = from; i + 1 < flat.size(); i += 2) {
    const std::string& field = flat[i];
    const size_t sep = field.find(':');
    if (sep == std::string::npos) continue;
    users.emplace(field.substr(sep + 1), flat[i + 1]);
  }
  return ClusterState::Members(users.begin(), users.end());
}

}  // namespace

ClusterState::ClusterState(Hub::Impl& hub, ClusterOptions options, uint32_t node)
    : hub_(hub), options_(std::move(options)), node_(std::to_string(node)) {}

ClusterState::~ClusterState() = default;

bool ClusterState::active() const {
  return active_.load(std::memory_order_relaxed) && options_.connected && options_.connected();
}

void ClusterState::start(Loop& loop) {
  loop_ = &loop;
  timer_ = loop.add_timer(options_.heartbeat, [this] { heartbeat(); }, options_.heartbeat);
  loop.post([this] { heartbeat(); });
}

void ClusterState::stop() {
  if (loop_ != nullptr) loop_->cancel_timer(timer_);
  timer_ = 0;
  // Leaving on purpose: the others need not wait for the timeout.
  if (active()) reap_node(node_, Reap::leaving);
  loop_ = nullptr;
}

void ClusterState::note_topic(const std::string& topic) {
  {
    std::lock_guard lock(mu_);
    if (!my_topics_.insert(topic).second) return;
  }
  options_.redis(key("node:" + node_ + ":topics"), {"SADD", key("node:" + node_ + ":topics"), topic}, {});
}

void ClusterState::heartbeat() {
  const bool connected = options_.connected && options_.connected();
  if (!connected) {
    if (was_connected_) windlass::log(LogLevel::warn, "channels: cluster state unreachable: answering from this node's view");
    was_connected_ = false;
    active_.store(false);
    // Until Redis answers, looked at often: the cluster's view is back
    // within a tenth of a second of it, not a heartbeat later.
    if (!retry_posted_ && loop_ != nullptr) {
      retry_posted_ = true;
      loop_->add_timer(std::chrono::milliseconds(100), [this] {
        retry_posted_ = false;
        if (loop_ != nullptr) heartbeat();
      });
    }
    return;
  }
  const std::string alive = key("node:" + node_ + ":alive");
  options_.redis(alive, {"SET", alive, "1", "PX", std::to_string(options_.node_timeout.count())}, {});
  if (!was_connected_) {
    // (Re)connected: Redis may have lost everything (a restart without
    // persistence), or the others may have reaped this node meanwhile.
    was_connected_ = true;
    grace_until_ = loop_->now() + options_.node_timeout;
    options_.redis(key("nodes"), {"SADD", key("nodes"), node_}, {});
    // What Redis holds for this node id may be stale: left by an earlier
    // process with this id (killed, then restarted by systemd or Supervisor
    // before node_timeout, so nobody reaped it), or by users who left while
    // Redis was away. Removed first, then written again from what is here.
    reap_node(node_, Reap::stale);
    last_counts_.clear();
    active_.store(true);
    return;
  }
  refresh_counts();
  if (loop_->now() >= grace_until_) reap();
}

// Subscriber counts change with every subscribe; Redis hears them once a
// heartbeat, only where they changed (the API's subscription_count lags by
// at most that much; occupied/vacated are told at once).
void ClusterState::refresh_counts() {
  std::map<std::string, size_t> now;
  for (const std::string& topic : hub_.app.broker().topics()) now[topic] = hub_.app.broker().subscriber_count(topic);
  for (const auto& [topic, n] : now) {
    auto it = last_counts_.find(topic);
    if (it != last_counts_.end() && it->second == n) continue;
    if (n == 0) continue;  // vacated() removes it
    options_.redis(topic_key(topic, "subs"), {"HSET", topic_key(topic, "subs"), node_, std::to_string(n)}, {});
  }
  last_counts_ = std::move(now);
}

void ClusterState::resync() {
  // This node's presence entries and subscriber counts, written again; and
  // its topics, which Redis may have lost (a restart without persistence):
  // without them nobody could reap this node's entries should it die.
  {
    std::lock_guard lock(mu_);
    my_topics_.clear();
  }
  for (const auto& [topic, members] : hub_.presence.snapshot()) {
    for (const auto& [user, info] : members) {
      options_.redis(topic_key(topic, "presence"), {"HSET", topic_key(topic, "presence"), node_ + ":" + user, info}, {});
    }
    note_topic(topic);
  }
  for (const std::string& topic : hub_.app.broker().topics()) {
    const size_t n = hub_.app.broker().subscriber_count(topic);
    options_.redis(topic_key(topic, "subs"), {"HSET", topic_key(topic, "subs"), node_, std::to_string(n)}, {});
    std::string_view channel;
    if (AppState* a = hub_.app_for_topic(topic, &channel)) {
      options_.redis(key("{app:" + a->config.id + "}:channels"),
                     {"SADD", key("{app:" + a->config.id + "}:channels"), std::string(channel)}, {});
    }
    note_topic(topic);
  }
}

void ClusterState::reap() {
  options_.redis(key("nodes"), {"SMEMBERS", key("nodes")}, [this](const std::vector<std::string>& nodes, std::string_view error) {
    if (!error.empty()) return;
    for (const std::string& n : nodes) {
      if (n == node_) continue;
      const std::string alive = key("node:" + n + ":alive");
      options_.redis(alive, {"EXISTS", alive}, [this, n](const std::vector<std::string>& r, std::string_view e) {
        if (!e.empty() || r.empty() || r[0] != "0") return;
        // Dead: one node cleans up after it (the one whose SET NX wins).
        const std::string lock = key("node:" + n + ":reaper");
        options_.redis(lock, {"SET", lock, node_, "NX", "PX", "30000"}, [this, n](const std::vector<std::string>& ok, std::string_view e2) {
          if (!e2.empty() || ok.empty() || ok[0] != "OK") return;
          windlass::log(LogLevel::warn, "channels: node " + n + " stopped answering: removing its presence members");
          reap_node(n, Reap::dead);
        });
      });
    }
  });
}

void ClusterState::reap_node(const std::string& node, Reap kind) {
  const std::string topics_key = key("node:" + node + ":topics");
  options_.redis(topics_key, {"SMEMBERS", topics_key}, [this, node, topics_key, kind](const std::vector<std::string>& topics,
                                                                                       std::string_view error) {
    if (!error.empty()) {
      if (kind == Reap::stale) resync();  // written again at least
      return;
    }
    // A stale purge is followed by resync() once every topic has answered.
    auto left = std::make_shared<size_t>(topics.size());
    auto answered = [this, kind, left] {
      if (--*left == 0 && kind == Reap::stale) resync();
    };
    for (const std::string& topic : topics) {
      options_.redis(topic_key(topic, "presence"),
                     {"EVAL", std::string(kReap), "2", topic_key(topic, "presence"), topic_key(topic, "subs"), node},
                     [this, topic, kind, answered](const std::vector<std::string>& r, std::string_view e) {
                       // Leaving ourselves: our own clients are gone too.
                       if (!e.empty() || r.size() < 2 || kind == Reap::leaving) return answered();
                       std::string_view channel;
                       AppState* a = hub_.app_for_topic(topic, &channel);
                       if (a == nullptr) return answered();
                       std::set<std::string> here;
                       if (kind == Reap::stale) {
                         for (auto& [user, info] : hub_.presence.members(topic)) here.insert(user);
                       }
                       // The node's members nobody else has: gone, told once (by us).
                       for (size_t i = 2; i < r.size(); ++i) {
                         if (here.contains(r[i])) continue;  // still here: written again by resync()
                         std::string event;
                         append_member_removed(event, channel, r[i]);
                         hub_.publish(*a, channel, event);
                         if (a->wants_webhook("member_removed")) {
                           std::string w = "{\"name\":\"member_removed\",\"channel\":";
                           append_json_string(w, channel);
                           w += ",\"user_id\":";
                           append_json_string(w, r[i]);
                           w += '}';
                           hub_.webhook(*a, std::move(w), false);
                         }
                       }
                       const bool still_here = kind == Reap::stale && hub_.app.broker().subscriber_count(topic) > 0;
                       if (r[0] == "0" && r[1] == "1" && !still_here) {
                         const std::string set = key("{app:" + a->config.id + "}:channels");
                         options_.redis(set, {"SREM", set, std::string(channel)}, {});
                         if (a->wants_webhook("channel_vacated")) {
                           std::string w = "{\"name\":\"channel_vacated\",\"channel\":";
                           append_json_string(w, channel);
                           w += '}';
                           hub_.webhook(*a, std::move(w), false);
                         }
                       }
                       answered();
                     });
    }
    options_.redis(topics_key, {"DEL", topics_key}, {});
    // This node stays registered: the others must reap it should it die.
    if (kind != Reap::stale) options_.redis(key("nodes"), {"SREM", key("nodes"), node}, {});
    if (topics.empty() && kind == Reap::stale) resync();
  });
}

void ClusterState::join(const std::string& topic, const std::string& user_id, const std::string& user_info,
                        size_t max_members, std::function<void(JoinResult)> done) {
  note_topic(topic);
  options_.redis(topic_key(topic, "presence"),
                 {"EVAL", std::string(kJoin), "1", topic_key(topic, "presence"), node_, user_id, user_info,
                  std::to_string(max_members)},
                 [done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
                   JoinResult j;
                   if (!error.empty() || r.empty()) return done(j);
                   j.ok = true;
                   const int64_t status = as_int(r[0]);
                   if (status < 0) {
                     j.full = true;
                     return done(j);
                   }
                   j.new_member = status == 0;
                   j.members = members_of(r, 1);
                   done(std::move(j));
                 });
}

void ClusterState::leave(const std::string& topic, const std::string& user_id, std::function<void(bool, bool)> done) {
  options_.redis(topic_key(topic, "presence"),
                 {"EVAL", std::string(kLeave), "1", topic_key(topic, "presence"), node_, user_id},
                 [done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
                   if (!error.empty() || r.empty()) return done(false, false);
                   done(true, r[0] == "0");
                 });
}

void ClusterState::members(const std::string& topic, std::function<void(bool, Members)> done) {
  options_.redis(topic_key(topic, "presence"), {"HGETALL", topic_key(topic, "presence")},
                 [done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
                   if (!error.empty()) return done(false, {});
                   done(true, members_of(r, 0));
                 });
}

void ClusterState::counts(const std::string& topic, bool users, std::function<void(bool, size_t, size_t)> done) {
  // Two keys in one slot, two commands: the subscriber counts, then (for
  // presence) the members.
  auto shared = std::make_shared<std::function<void(bool, size_t, size_t)>>(std::move(done));
  options_.redis(topic_key(topic, "subs"), {"HVALS", topic_key(topic, "subs")},
                 [this, topic, users, shared](const std::vector<std::string>& r, std::string_view error) {
                   if (!error.empty()) return (*shared)(false, 0, 0);
                   size_t subs = 0;
                   for (const auto& v : r) subs += static_cast<size_t>(std::max<int64_t>(0, as_int(v)));
                   if (!users) return (*shared)(true, subs, 0);
                   members(topic, [shared, subs](bool ok, Members m) { (*shared)(ok, subs, m.size()); });
                 });
}

void ClusterState::channels(const std::string& app_id, std::function<void(bool, std::vector<std::string>)> done) {
  const std::string set = key("{app:" + app_id + "}:channels");
  options_.redis(set, {"SMEMBERS", set}, [done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
    if (!error.empty()) return done(false, {});
    std::vector<std::string> out = r;
    std::sort(out.begin(), out.end());
    done(true, std::move(out));
  });
}

void ClusterState::occupied(const std::string& topic, std::function<void(bool)> done) {
  note_topic(topic);
  std::string_view channel;
  AppState* a = hub_.app_for_topic(topic, &channel);
  const size_t n = std::max<size_t>(1, hub_.app.broker().subscriber_count(topic));
  options_.redis(topic_key(topic, "subs"),
                 {"EVAL", std::string(kOccupy), "1", topic_key(topic, "subs"), node_, std::to_string(n)},
                 [done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
                   if (!error.empty() || r.empty()) return done(false);
                   done(r[0] == "0");
                 });
  if (a != nullptr) {
    const std::string set = key("{app:" + a->config.id + "}:channels");
    options_.redis(set, {"SADD", set, std::string(channel)}, {});
  }
}

void ClusterState::vacated(const std::string& topic, std::function<void(bool)> done) {
  std::string_view channel;
  AppState* a = hub_.app_for_topic(topic, &channel);
  const std::string app_id = a != nullptr ? a->config.id : std::string();
  const std::string ch(channel);
  options_.redis(topic_key(topic, "subs"), {"EVAL", std::string(kVacate), "1", topic_key(topic, "subs"), node_},
                 [this, app_id, ch, done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
                   if (!error.empty() || r.empty()) return done(false);
                   const bool last = r[0] == "0";
                   if (last && !app_id.empty()) {
                     const std::string set = key("{app:" + app_id + "}:channels");
                     options_.redis(set, {"SREM", set, ch}, {});
                   }
                   done(last);
                 });
}

void ClusterState::cache_put(const std::string& topic, std::string event) {
  options_.redis(topic_key(topic, "cache"), {"SET", topic_key(topic, "cache"), std::move(event), "PX", "1800000"}, {});
}

void ClusterState::cache_get(const std::string& topic, std::function<void(bool, std::optional<std::string>)> done) {
  options_.redis(topic_key(topic, "cache"), {"GET", topic_key(topic, "cache")},
                 [done = std::move(done)](const std::vector<std::string>& r, std::string_view error) {
                   if (!error.empty()) return done(false, std::nullopt);
                   if (r.empty() || r[0].empty()) return done(true, std::nullopt);
                   done(true, r[0]);
                 });
}

}  // namespace windlass::channels
