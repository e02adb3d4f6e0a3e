// The hub's state shared by the nodes of a cluster, in Redis (see
// ClusterOptions in windlass/channels.hpp).
//
// Keys, each topic's under one {hash tag} so that a script touching them
// runs on one Cluster shard (P is ClusterOptions::key_prefix, T a topic
// "<app id>:<channel>"):
//   P{T}:presence  hash  "<node>:<user_id>" -> user_info   a member, per node that has it
//   P{T}:subs      hash  "<node>" -> subscriber count       per node
//   P{T}:cache     string: the last event of a cache channel (30 min)
//   P{app:<id>}:channels  set of the app's channels with subscribers anywhere
//   Pnode:<n>:alive  string with a TTL (node_timeout), refreshed every heartbeat
//   Pnode:<n>:topics set of the topics where node n has entries
//   Pnodes           set of the node ids that registered
//   Pnode:<n>:reaper who is cleaning up after dead node n (SET NX, 30 s)
//
// Each change is one script that answers the question the hub must act on
// (was this user a member anywhere before? is the channel empty now?), so
// exactly one node sees each transition and fires its event and webhook.
// Every reply comes on the bridge's loop; the callbacks here post to
// whichever loop must act.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "windlass/channels.hpp"
#include "windlass/loop.hpp"

namespace windlass::channels {

struct AppState;

class ClusterState {
 public:
  using Members = std::vector<std::pair<std::string, std::string>>;  // user_id, user_info (sorted, once each)

  ClusterState(Hub::Impl& hub, ClusterOptions options, uint32_t node);
  ~ClusterState();

  // The first loop's thread, at its start and stop: heartbeats and the reaper.
  void start(Loop& loop);
  void stop();

  // True when Redis answers: the cluster's view is the one to use. When
  // false, the hub answers from what this node knows (and says so in logs).
  bool active() const;

  // A user's first connection on this node joined a presence channel.
  // `done(new_member, members)`: new_member when no node had the user;
  // full when the channel has max_members users and this is not one.
  struct JoinResult {
    bool ok = false;  // false: Redis failed; the hub falls back to its own view
    bool full = false;
    bool new_member = false;
    Members members;
  };
  void join(const std::string& topic, const std::string& user_id, const std::string& user_info, size_t max_members,
            std::function<void(JoinResult)> done);
  // This node's last connection of the user left: `done(gone)` when no
  // node has the user any more.
  void leave(const std::string& topic, const std::string& user_id, std::function<void(bool ok, bool gone)> done);
  void members(const std::string& topic, std::function<void(bool ok, Members)> done);
  // The subscriber count over every node, and the distinct presence users.
  void counts(const std::string& topic, bool users, std::function<void(bool ok, size_t subs, size_t users)> done);
  // The app's channels with subscribers anywhere, and their subscriber counts.
  void channels(const std::string& app_id, std::function<void(bool ok, std::vector<std::string>)> done);

  // This node's first subscriber of a topic arrived / its last left:
  // `done(first_in_cluster)` / `done(last_in_cluster)` decides the webhooks.
  void occupied(const std::string& topic, std::function<void(bool first)> done);
  void vacated(const std::string& topic, std::function<void(bool last)> done);

  void cache_put(const std::string& topic, std::string event);
  void cache_get(const std::string& topic, std::function<void(bool ok, std::optional<std::string>)> done);

 private:
  void heartbeat();
  void resync();
  void refresh_counts();
  void reap();
  // How a node's entries are removed: a dead node's (its members nobody
  // else has are told gone), this node's own on a clean stop (nothing told:
  // its clients are gone too), or this node's own when it (re)connects
  // (what an earlier process with this id or a Redis kept through an
  // outage left; members it still has are not told, and resync() follows).
  enum class Reap : uint8_t { dead, leaving, stale };
  void reap_node(const std::string& node, Reap kind);
  void note_topic(const std::string& topic);
  std::string key(std::string_view name) const { return options_.key_prefix + std::string(name); }
  std::string topic_key(const std::string& topic, std::string_view what) const {
    return options_.key_prefix + "{" + topic + "}:" + std::string(what);
  }

  Hub::Impl& hub_;
  ClusterOptions options_;
  std::string node_;
  Loop* loop_ = nullptr;
  Loop::TimerId timer_ = 0;
  std::atomic<bool> active_{false};
  bool was_connected_ = false;       // the first loop only
  bool retry_posted_ = false;
  Loop::Clock::time_point grace_until_{};  // no reaping right after (re)connecting: others re-register first
  std::mutex mu_;
  std::set<std::string> my_topics_;  // topics with entries of this node (for resync)
  std::map<std::string, size_t> last_counts_;  // first loop only: what Redis last heard
};

}  // namespace windlass::channels
