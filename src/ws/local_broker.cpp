#include "ws/local_broker.hpp"

#include <algorithm>
#include <chrono>

#include "log.hpp"
#include "windlass/loop.hpp"
#include "ws/ws_connection.hpp"

namespace windlass::detail {

namespace {
uint64_t unix_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}
}  // namespace

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
  const HistoryOptions* h = policies_.empty() ? nullptr : history_of(topic);
  if (h == nullptr) {
    publish_frame(topic, make_shared_frame(message.is_binary(), message.data), options.except);
    return;
  }
  if (source_ != nullptr || !options.offset.empty()) {
    // The history is kept elsewhere: the offset comes with the message (or
    // there is none, for what is delivered while it cannot be written).
    const std::optional<StreamOffset> offset = StreamOffset::parse(options.offset);
    const std::string_view text = offset ? options.offset : std::string_view();
    SharedFrame frame = h->stamp ? make_shared_frame(message.is_binary(), h->stamp(message.data, text))
                                 : make_shared_frame(message.is_binary(), message.data);
    publish_frame(topic, frame, options.except, offset);
    return;
  }
  const uint64_t now = unix_ms();
  const Member* here = nullptr;
  SharedFrame frame;
  std::optional<StreamOffset> offset;
  {
    // Offset, frame and the posts to the other loops under one lock: every
    // loop gets the topic's messages in offset order.
    std::lock_guard lock(history_mu_);
    offset = log_of(topic, now).append(message.kind, message.data, now, *h);
    frame = h->stamp ? make_shared_frame(message.is_binary(), h->stamp(message.data, offset->str()))
                     : make_shared_frame(message.is_binary(), message.data);
    for (const Member& m : members_) {
      if (m.loop->in_loop_thread()) {
        here = &m;
      } else {
        m.loop->post([table = m.table, t = std::string(topic), frame, except = options.except, offset] {
          table->deliver(t, frame, except, offset);
        });
      }
    }
  }
  // This loop's subscribers outside the lock (a delivery may close a slow
  // consumer, whose on_close may publish); nothing of this topic can reach
  // this loop before it: later posts run after this task.
  if (here != nullptr) here->table->deliver(topic, frame, options.except, offset);
}

void LocalBroker::publish_frame(std::string_view topic, const SharedFrame& frame, uint64_t except_id,
                                const std::optional<StreamOffset>& offset) {
  for (const Member& m : members_) {
    if (m.loop->in_loop_thread()) {
      m.table->deliver(topic, frame, except_id, offset);
    } else {
      m.loop->post([table = m.table, t = std::string(topic), frame, except_id, offset] {
        table->deliver(t, frame, except_id, offset);
      });
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

// ------------------------------------------------------------ history

void LocalBroker::keep_history(std::string prefix, HistoryOptions options) {
  for (auto& [p, o] : policies_) {
    if (p == prefix) {
      *o = std::move(options);
      return;
    }
  }
  policies_.emplace_back(std::move(prefix), std::make_unique<HistoryOptions>(std::move(options)));
  std::stable_sort(policies_.begin(), policies_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

const HistoryOptions* LocalBroker::history_of(std::string_view topic) const {
  for (const auto& [prefix, options] : policies_) {
    if (topic.starts_with(prefix)) return options->max_messages == 0 ? nullptr : options.get();
  }
  return nullptr;
}

void LocalBroker::set_history_source(HistorySource* source) {
  source_ = source;
}

size_t LocalBroker::history_topics() const {
  std::lock_guard lock(history_mu_);
  return logs_.size();
}

HistoryLog& LocalBroker::log_of(std::string_view topic, uint64_t now_ms) {
  if (auto it = logs_.find(topic); it != logs_.end()) return it->second;
  // A new log: now and then, the logs idle for twice their age bound whose
  // topics have no subscriber here go (a later offset from them is then
  // too old, as it would be anyway).
  if (++appends_since_sweep_ >= 64) {
    appends_since_sweep_ = 0;
    std::erase_if(logs_, [&](const auto& entry) {
      const HistoryOptions* h = history_of(entry.first);
      const uint64_t idle = 2 * static_cast<uint64_t>(h == nullptr ? 0 : h->max_age.count());
      return now_ms - std::min(now_ms, entry.second.touched_ms()) > idle && subscriber_count(entry.first) == 0;
    });
  }
  return logs_.emplace(std::string(topic), HistoryLog(now_ms)).first->second;
}

size_t LocalBroker::loop_of(const Connection& conn) const {
  WsConnection* c = conn.impl();
  if (c == nullptr || conn.loop() == nullptr) return npos;
  const size_t index = conn.loop()->index();
  if (index >= members_.size() || members_[index].loop != conn.loop()) return npos;
  if (WsConnection::id_in_slot(c) != conn.id() || !c->is_open()) return npos;
  return index;
}

bool LocalBroker::subscribe_from(const Connection& conn, std::string_view topic, std::string_view since,
                                 RecoveryHandler done) {
  const HistoryOptions* h = history_of(topic);
  if (h == nullptr) {
    if (!subscribe(conn, topic)) return false;
    if (done) done(Recovery{RecoveryOutcome::no_history, {}, 0});
    return true;
  }
  const size_t index = loop_of(conn);
  if (index == npos) return false;
  WsConnection* c = conn.impl();
  TopicTable& table = *members_[index].table;
  bool first = false;
  if (!table.subscribe(topic, c, first)) return false;
  ++c->topic_count();
  count(topic, +1);
  std::optional<StreamOffset> from;
  bool invalid = false;
  if (!since.empty()) {
    from = StreamOffset::parse(since);
    invalid = !from;  // read as a fresh subscription, reported as invalid
  }
  // From now on, what is published on the topic waits for the history.
  table.begin_recovery(topic, c, from.value_or(StreamOffset{}), true);
  if (source_ != nullptr) {
    Loop* loop = members_[index].loop;
    source_->read_history(std::string(topic), from, *h,
                          [this, conn, loop, t = std::string(topic), h, invalid, done = std::move(done)](
                              HistoryRead read) mutable {
                            loop->post([this, conn, t = std::move(t), h, invalid, done = std::move(done),
                                        read = std::move(read)]() mutable {
                              finish_recovery(conn, t, *h, std::move(read), invalid, done);
                            });
                          });
    return true;
  }
  HistoryRead read;
  {
    const uint64_t now = unix_ms();
    std::lock_guard lock(history_mu_);
    read = log_of(topic, now).read(from, now, *h);
  }
  finish_recovery(conn, std::string(topic), *h, std::move(read), invalid, done);
  return true;
}

void LocalBroker::finish_recovery(const Connection& conn, const std::string& topic, const HistoryOptions& options,
                                  HistoryRead read, bool invalid, const RecoveryHandler& done) {
  const size_t index = loop_of(conn);
  if (index == npos) return;  // closed while the history was read
  TopicTable& table = *members_[index].table;
  WsConnection* c = conn.impl();
  TopicTable::Recovering* r = table.recovering(topic, c);
  if (r == nullptr) return;  // unsubscribed meanwhile
  Recovery out;
  out.outcome = invalid ? RecoveryOutcome::invalid_offset : read.outcome;
  if (out.outcome == RecoveryOutcome::recovered && r->overflowed) out.outcome = RecoveryOutcome::too_old;
  const bool positioned = out.outcome != RecoveryOutcome::unavailable;
  if (positioned) out.position = read.position.str();
  if (out.outcome != RecoveryOutcome::recovered) read.missed.clear();
  out.missed = read.missed.size();
  if (done) done(out);
  // What `done` did may have closed the connection or left the topic.
  auto still_here = [&] { return loop_of(conn) != npos && table.recovering(topic, c) != nullptr; };
  if (!still_here()) return;
  for (HistoryEntry& e : read.missed) {
    const bool binary = e.kind == MessageKind::binary;
    SharedFrame frame = options.stamp ? make_shared_frame(binary, options.stamp(e.payload, e.offset.str()))
                                      : make_shared_frame(binary, e.payload);
    CompressedVariant compressed;
    c->send_shared(frame, compressed);
    if (!still_here()) return;
  }
  r = table.recovering(topic, c);
  auto held = std::move(r->held);
  r->held.clear();
  r->pending = false;
  r->have = positioned ? read.position : StreamOffset{};
  const StreamOffset have = r->have;
  for (auto& [offset, frame] : held) {
    if (offset && *offset <= have) continue;  // in the history just sent
    CompressedVariant compressed;
    c->send_shared(frame, compressed);
    if (loop_of(conn) == npos) return;
  }
}

}  // namespace windlass::detail
