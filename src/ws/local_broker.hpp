// The App's own broker: delivery within the process (see broker.hpp for
// the seam it implements). Each loop's subscribers are in that loop's
// TopicTable, touched only by its thread. A process-wide registry under a
// lock counts the subscribers of each topic; it is touched on subscribe
// and unsubscribe only, never per message, so that subscriber_count()
// answers from any thread and the first/last-subscriber events reach the
// observers in the order they happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "windlass/broker.hpp"
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

  // The loop thread of a closing connection: it leaves every topic.
  void leave_all(WsConnection* conn, size_t loop_index);
  // The encoded frame to every subscriber, on every loop.
  void publish_frame(std::string_view topic, const SharedFrame& frame, uint64_t except_id);

 private:
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
};

}  // namespace windlass::detail
