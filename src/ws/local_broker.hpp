// The App's own broker: delivery within the process (see broker.hpp for
// the seam it implements). Each loop's subscribers are in that loop's
// TopicTable, touched only by its thread. A process-wide registry under a
// lock counts the subscribers of each topic; it is touched on subscribe
// and unsubscribe only, never per message, so that subscriber_count()
// answers from any thread and the first/last-subscriber events reach the
// observers in the order they happened.
//
// History (history.hpp): the policies are fixed before the loops start, so
// a publish finds its topic's policy without a lock. With no history source
// (no bridge keeping it), each history topic's HistoryLog is here, under one
// lock taken per publish on a history topic: the offset is given and the
// frame posted to every loop under it, so that every loop delivers a
// topic's messages in offset order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "windlass/broker.hpp"
#include "ws/history_log.hpp"
#include "ws/pubsub.hpp"

namespace windlass {
class Loop;
}

namespace windlass::detail {

class WsConnection;

class LocalBroker final : public Broker {
 public:
  // Before the loops start: loop->index() is the loop's place.
  void add_loop(Loop* loop, TopicTable* table);

  bool subscribe(const Connection& conn, std::string_view topic) override;
  bool unsubscribe(const Connection& conn, std::string_view topic) override;
  void publish(std::string_view topic, const Message& message, const PublishOptions& options = {}) override;
  size_t subscriber_count(std::string_view topic) const override;
  std::vector<std::string> topics() const override;
  void add_observer(TopicObserver* observer) override;
  void remove_observer(TopicObserver* observer) override;
  void keep_history(std::string prefix, HistoryOptions options) override;
  const HistoryOptions* history_of(std::string_view topic) const override;
  bool subscribe_from(const Connection& conn, std::string_view topic, std::string_view since,
                      RecoveryHandler done) override;
  void set_history_source(HistorySource* source) override;

  // The loop thread of a closing connection: it leaves every topic.
  void leave_all(WsConnection* conn, size_t loop_index);
  // The encoded frame to every subscriber, on every loop.
  void publish_frame(std::string_view topic, const SharedFrame& frame, uint64_t except_id,
                     const std::optional<StreamOffset>& offset = std::nullopt);

  // History logs kept here now (for tests and metrics).
  size_t history_topics() const;

 private:
  // The connection's loop, the history read: the catching up, then live.
  void finish_recovery(const Connection& conn, const std::string& topic, const HistoryOptions& options,
                       HistoryRead read, bool invalid, const RecoveryHandler& done);
  // Under history_mu_: the topic's log, made if it has none; old idle logs
  // of topics without subscribers are dropped now and then.
  HistoryLog& log_of(std::string_view topic, uint64_t now_ms);
  // The index of the loop of this broker that `conn` is open on (called on
  // that loop), or npos.
  size_t loop_of(const Connection& conn) const;
  static constexpr size_t npos = static_cast<size_t>(-1);

  // One subscriber more (+1) or less (-1) for `topic`, anywhere in the process.
  void count(std::string_view topic, int delta);

  struct Member {
    Loop* loop;
    TopicTable* table;
  };
  std::vector<Member> members_;  // fixed before the loops start

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> subscribers_;  // > 0 only
  std::vector<TopicObserver*> observers_;

  std::vector<std::pair<std::string, std::unique_ptr<HistoryOptions>>> policies_;  // longest prefix first
  HistorySource* source_ = nullptr;
  mutable std::mutex history_mu_;
  std::unordered_map<std::string, HistoryLog, Hash, std::equal_to<>> logs_;
  size_t appends_since_sweep_ = 0;
};

}  // namespace windlass::detail
