#include "ws/local_broker.hpp"

#include <algorithm>

#include "log.hpp"
#include "windlass/loop.hpp"
#include "ws/ws_connection.hpp"

namespace windlass::detail {

void LocalBroker::add_loop(Loop* loop, TopicTable* table) {
  if (members_.size() <= loop->index()) members_.resize(loop->index() + 1);
  members_[loop->index()] = Member{loop, table};
}

void LocalBroker::count(std::string_view topic, int delta) {
  std::lock_guard lock(mu_);
  auto it = subscribers_.find(topic);
  if (delta > 0) {
    if (it == subscribers_.end()) {
      subscribers_.emplace(std::string(topic), 1);
      for (TopicObserver* o : observers_) o->on_topic_occupied(topic);
    } else {
      ++it->second;
    }
  } else if (it != subscribers_.end()) {
    if (--it->second == 0) {
      subscribers_.erase(it);
      for (TopicObserver* o : observers_) o->on_topic_vacated(topic);
    }
  }
}

bool LocalBroker::subscribe(const Connection& conn, std::string_view topic) {
  WsConnection* c = conn.impl();
  if (c == nullptr || conn.loop() == nullptr) return false;
  const size_t index = conn.loop()->index();
  if (index >= members_.size() || members_[index].loop != conn.loop()) return false;
  if (WsConnection::id_in_slot(c) != conn.id() || !c->is_open()) return false;
  bool first = false;
  if (!members_[index].table->subscribe(topic, c, first)) return false;
  ++c->topic_count();
  count(topic, +1);
  return true;
}

bool LocalBroker::unsubscribe(const Connection& conn, std::string_view topic) {
  WsConnection* c = conn.impl();
  if (c == nullptr || conn.loop() == nullptr) return false;
  const size_t index = conn.loop()->index();
  if (index >= members_.size() || members_[index].loop != conn.loop()) return false;
  if (WsConnection::id_in_slot(c) != conn.id() || c->topic_count() == 0) return false;
  bool last = false;
  if (!members_[index].table->unsubscribe(topic, c, last)) return false;
  --c->topic_count();
  count(topic, -1);
  return true;
}

void LocalBroker::leave_all(WsConnection* conn, size_t loop_index) {
  if (loop_index >= members_.size()) return;
  members_[loop_index].table->leave_all(conn, [this](std::string_view topic) { count(topic, -1); });
  conn->topic_count() = 0;
}

void LocalBroker::publish(std::string_view topic, const Message& message, const PublishOptions& options) {
  publish_frame(topic, make_shared_frame(message.is_binary(), message.data), options.except);
}

void LocalBroker::publish_frame(std::string_view topic, const SharedFrame& frame, uint64_t except_id) {
  for (const Member& m : members_) {
    if (m.loop->in_loop_thread()) {
      m.table->deliver(topic, frame, except_id);
    } else {
      m.loop->post([table = m.table, t = std::string(topic), frame, except_id] { table->deliver(t, frame, except_id); });
    }
  }
}

size_t LocalBroker::subscriber_count(std::string_view topic) const {
  std::lock_guard lock(mu_);
  auto it = subscribers_.find(topic);
  return it == subscribers_.end() ? 0 : it->second;
}

std::vector<std::string> LocalBroker::topics() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(subscribers_.size());
  for (const auto& [name, n] : subscribers_) out.push_back(name);
  return out;
}

void LocalBroker::add_observer(TopicObserver* observer) {
  std::lock_guard lock(mu_);
  observers_.push_back(observer);
}

void LocalBroker::remove_observer(TopicObserver* observer) {
  std::lock_guard lock(mu_);
  std::erase(observers_, observer);
}

}  // namespace windlass::detail
