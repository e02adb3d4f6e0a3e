// Topics within one loop, and the message shared by every recipient of a
// publish. The process-wide broker over them is LocalBroker
// (local_broker.hpp).
//
// Each loop has its own TopicTable, touched only by its thread. A publish
// encodes the frame once; within a loop, a small frame is copied into each
// recipient's write buffer (cheaper than sharing it, and it coalesces with
// the recipient's other pending frames into one write per loop turn); a
// large one is queued by reference.
//
// Deliveries to one topic within a turn are batched: a burst of messages
// to a topic walks its subscribers once, each subscriber taking the whole
// batch while its connection, socket and write buffer are in the cache,
// instead of one walk per message (at 10,000 subscribers the lists and
// connections no longer fit in the cache, and each message's walk missed
// on every one). Nothing can tell a batch from immediate delivery: the
// batch is delivered before anything that could come after it reaches a
// subscriber — a publish to another topic, a subscribe or unsubscribe on
// this loop, and any frame sent directly to any connection of this loop
// (WsConnection::send_frame) — and at the end of the turn, before the
// sockets' writes. A delivery made while a batch is delivered (by a
// subscriber's close, say) goes at once, as before.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "windlass/history.hpp"

namespace windlass {
class Loop;
}

namespace windlass::detail {

class WsConnection;

// A message published once: its encoded, uncompressed frame (shared by
// every recipient as is) and where its payload starts (recipients that
// negotiated permessage-deflate compress the payload instead).
struct SharedMessage {
  std::string frame;
  uint32_t header_len = 0;
  bool binary = false;
  std::string_view payload() const noexcept { return std::string_view(frame).substr(header_len); }
};
using SharedFrame = std::shared_ptr<const SharedMessage>;

// One delivery's compressed variant, made by the first recipient that
// compresses with a loop's shared compressor and reused by the others.
struct CompressedVariant {
  const void* deflater = nullptr;  // the shared compressor that made it
  std::shared_ptr<const std::string> frame;
};

// Encodes one unmasked frame (header and payload) for sharing.
SharedFrame make_shared_frame(bool binary, std::string_view payload);

class TopicTable {
 public:
  // `loop`: the loop whose thread uses the table, where a batch's delivery
  // is deferred to (null: every delivery at once).
  explicit TopicTable(Loop* loop = nullptr) : loop_(loop) {}
  TopicTable(const TopicTable&) = delete;
  TopicTable& operator=(const TopicTable&) = delete;
  // False if already subscribed. `first`: the topic had no subscriber on this loop.
  bool subscribe(std::string_view name, WsConnection* conn, bool& first);
  // False if not subscribed. `last`: the topic has no subscriber left on this loop.
  bool unsubscribe(std::string_view name, WsConnection* conn, bool& last);
  // Unsubscribes `conn` from every topic, calling left(name) for each.
  template <class F>
  void leave_all(WsConnection* conn, F&& left) {
    flush();
    auto it = memberships_.find(conn);
    if (it == memberships_.end()) return;
    std::vector<const std::string*> names = std::move(it->second);
    memberships_.erase(it);
    for (const std::string* name : names) {
      const std::string copy = *name;  // the key dies with its topic
      remove(copy, conn);
      left(std::string_view(copy));
    }
  }
  // Delivers `frame` to the topic's subscribers except the connection with
  // id `except_id` (0: none). Subscribers may unsubscribe, close or
  // subscribe others while it runs. `offset`: the message's place in the
  // topic's history, for the subscribers catching up (below).
  // Batched (see above): delivered by the end of this turn, and before
  // anything that could follow it.
  void deliver(std::string_view name, const SharedFrame& frame, uint64_t except_id,
               const std::optional<StreamOffset>& offset = std::nullopt);
  // Delivers the batch now, if there is one (and none is being delivered).
  void flush() {
    if (!pending_.empty() && !flushing_) flush_pending();
  }
  // The most messages a batch holds before it is delivered.
  static constexpr size_t kMaxBatch = 64;
  size_t subscriber_count(std::string_view name) const;
  size_t topic_count() const noexcept { return topics_.size(); }

  // A subscriber catching up from the topic's history
  // (LocalBroker::subscribe_from). While its history is read (`pending`),
  // live messages wait for it in `held`; once it has caught up to `have`,
  // live messages at or before `have` are ones it already got, skipped,
  // and the first later one ends its catching up.
  struct Recovering {
    WsConnection* conn = nullptr;
    bool pending = true;
    bool overflowed = false;  // more than kMaxHeld waited: the oldest were lost
    StreamOffset have;
    std::vector<std::pair<std::optional<StreamOffset>, SharedFrame>> held;
  };
  static constexpr size_t kMaxHeld = 10'000;
  // `conn` is subscribed to `name`.
  void begin_recovery(std::string_view name, WsConnection* conn, StreamOffset have, bool pending);
  // Null when `conn` is not catching up on `name` (or left it).
  Recovering* recovering(std::string_view name, WsConnection* conn);

 private:
  struct Topic {
    std::vector<WsConnection*> subscribers;
    size_t live = 0;         // non-null entries
    int iterating = 0;       // > 0 while a delivery walks the list
    bool has_holes = false;  // entries nulled during a delivery
    std::unique_ptr<std::vector<Recovering>> recovering;  // null but while someone catches up
  };
  // What a catching-up subscriber does with a live message: true to send it now.
  static bool admit(Topic& t, WsConnection* c, const SharedFrame& frame, const std::optional<StreamOffset>& offset);
  // Takes conn off the topic's list; true when the topic is now empty.
  bool remove(std::string_view name, WsConnection* conn);

  struct Pending {
    SharedFrame frame;
    uint64_t except_id = 0;
    std::optional<StreamOffset> offset;
  };
  void flush_pending();
  // Every subscriber of `name` takes the messages of `batch` in order.
  void deliver_now(std::string_view name, const Pending* batch, size_t count);

  Loop* loop_ = nullptr;
  std::string pending_topic_;
  std::vector<Pending> pending_;        // this turn's batch, for pending_topic_
  std::vector<Pending> spare_;          // the last batch's vector, for its capacity
  bool flushing_ = false;
  bool flush_deferred_ = false;  // the end-of-turn delivery is asked for

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, Topic, Hash, std::equal_to<>> topics_;
  // Which topics each subscribed connection is in (keys of topics_: stable
  // while the topic exists, and it exists while it has subscribers), so a
  // closing connection leaves them without a walk of every topic, and a
  // connection with no topic carries nothing for them.
  std::unordered_map<WsConnection*, std::vector<const std::string*>> memberships_;
};

}  // namespace windlass::detail
