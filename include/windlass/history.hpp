// History and recovery: a topic keeps its last messages, each with an
// offset, so that a subscriber that was away (a dropped connection, a
// client moving to another node) gets what it missed, exactly once and in
// order, or learns that it cannot (too old) and reloads.
//
//   windlass::HistoryOptions h;
//   h.max_messages = 100;                  // the last 100 ...
//   h.max_age = std::chrono::minutes(5);   // ... of the last five minutes
//   h.stamp = [](std::string_view payload, std::string_view offset) {
//     return std::string(offset) + " " + std::string(payload);  // the client learns each offset
//   };
//   app.broker().keep_history("chat:", h);  // before app.run()
//
//   // on a (re)subscribe, with the last offset the client saw ("" if none):
//   app.broker().subscribe_from(conn, "chat:lobby", since, [](const windlass::Recovery& r) {
//     // on conn's loop, before the missed messages: tell the client r.outcome
//     // and r.position; then come the missed messages, then live ones.
//   });
//
// Offsets are "<ms>-<seq>" (the form of Redis stream ids: a bridge keeps
// the history in a Redis Stream and its ids are the offsets), increasing
// along a topic. Clients treat them as opaque text and send back the last
// one they saw.
//
// Where it lives: in this process's memory by default; with a bridge that
// keeps it (RedisBridge), in Redis, shared by every node, so a client can
// come back on any node. The rules are the same in both places:
//   - a topic's history starts the first time it is needed (a publish, or
//     a subscription asking for its position) at a new position, later
//     than any offset of an earlier history of that topic;
//   - it keeps at most max_messages messages no older than max_age;
//   - a recovery from `since` succeeds when nothing after `since` has been
//     dropped (by the bounds, or because the history itself was dropped
//     and started again); otherwise it is `too_old`.
#pragma once

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/connection.hpp"

namespace windlass {

// An offset in a topic's history, "<ms>-<seq>".
struct StreamOffset {
  uint64_t ms = 0;
  uint64_t seq = 0;

  // nullopt for anything but two decimal numbers joined by '-'.
  static std::optional<StreamOffset> parse(std::string_view text) noexcept;
  std::string str() const;
  // The offset right after this one.
  StreamOffset next() const noexcept {
    return seq == UINT64_MAX ? StreamOffset{ms + 1, 0} : StreamOffset{ms, seq + 1};
  }
  bool is_zero() const noexcept { return ms == 0 && seq == 0; }
  auto operator<=>(const StreamOffset&) const = default;
};

struct HistoryOptions {
  size_t max_messages = 100;  // 0: the topics keep no history
  std::chrono::milliseconds max_age{std::chrono::minutes(5)};
  // What subscribers receive of a message published on the topic, given
  // its offset: the application's own format (a JSON field, a prefix).
  // Called once per message on each node that delivers it, on any thread;
  // with an empty offset for what is delivered while the history cannot
  // be written (a bridge cut off from Redis). Unset: the message as
  // published, and clients learn offsets only from Recovery::position.
  std::function<std::string(std::string_view payload, std::string_view offset)> stamp;
};

enum class RecoveryOutcome : uint8_t {
  fresh,           // no offset was given: a new subscription, at `position`
  recovered,       // every message after the offset follows, then live ones
  too_old,         // some of what followed the offset is gone: reload; live from `position`
  invalid_offset,  // the offset is not one (malformed, or ahead of the topic): as too_old
  unavailable,     // the history could not be read (its store is away): live only, no position
  no_history,      // the topic keeps no history: live only
};
std::string_view describe(RecoveryOutcome outcome) noexcept;

struct Recovery {
  RecoveryOutcome outcome = RecoveryOutcome::no_history;
  // The topic's offset when the subscription took effect: the last
  // message the subscriber has (after the missed ones), the one to come
  // back with if nothing else arrives. Empty when unavailable or no_history.
  std::string position;
  size_t missed = 0;  // messages delivered to catch up
};

// Called on the connection's loop, once, right before the missed messages
// are sent: what it sends goes first. Not called if the connection closed
// or unsubscribed from the topic while the history was being read.
using RecoveryHandler = std::function<void(const Recovery&)>;

// One message of a history, as published.
struct HistoryEntry {
  StreamOffset offset;
  MessageKind kind = MessageKind::text;
  std::string payload;
};

struct HistoryRead {
  RecoveryOutcome outcome = RecoveryOutcome::unavailable;
  StreamOffset position;              // see Recovery::position
  std::vector<HistoryEntry> missed{};  // in offset order, all after `since`
};

// Where the history lives when a bridge keeps it (Broker::set_history_source).
// The local broker then keeps none in memory, and assigns no offsets: what
// is published on a history topic comes back to it through publish() with
// PublishOptions::offset set, on every node alike, in the history's order.
class HistorySource {
 public:
  virtual ~HistorySource() = default;
  // Any thread. What `topic` has after `since` (nullopt: nothing; only its
  // position), read after this node is sure to receive every message
  // published from then on (its subscription upstream is confirmed), so
  // that the read and the live messages overlap and nothing falls between
  // them. `done` runs once, on any thread.
  virtual void read_history(std::string topic, std::optional<StreamOffset> since, const HistoryOptions& options,
                            std::function<void(HistoryRead)> done) = 0;
};

}  // namespace windlass
