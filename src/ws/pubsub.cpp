#include "ws/pubsub.hpp"

#include <algorithm>

#include "proto/ws_frame.hpp"
#include "windlass/loop.hpp"
#include "ws/ws_connection.hpp"

namespace windlass::detail {

SharedFrame make_shared_frame(bool binary, std::string_view payload) {
  uint8_t header[proto::kMaxFrameHeader];
  size_t n = proto::encode_frame_header(header, binary ? proto::Opcode::binary : proto::Opcode::text,
                                        payload.size());
  auto msg = std::make_shared<SharedMessage>();
  msg->frame.reserve(n + payload.size());
  msg->frame.append(reinterpret_cast<const char*>(header), n);
  msg->frame.append(payload);
  msg->header_len = static_cast<uint32_t>(n);
  msg->binary = binary;
  return msg;
}

bool TopicTable::subscribe(std::string_view name, WsConnection* conn, bool& first) {
  flush();  // the batch was published before this subscriber came
  auto it = topics_.find(name);
  if (it == topics_.end()) it = topics_.emplace(std::string(name), Topic{}).first;
  Topic& t = it->second;
  if (t.live != 0 && std::find(t.subscribers.begin(), t.subscribers.end(), conn) != t.subscribers.end()) return false;
  first = t.live == 0;
  t.subscribers.push_back(conn);
  ++t.live;
  memberships_[conn].push_back(&it->first);
  return true;
}

bool TopicTable::remove(std::string_view name, WsConnection* conn) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return false;
  Topic& t = it->second;
  auto pos = std::find(t.subscribers.begin(), t.subscribers.end(), conn);
  if (pos == t.subscribers.end()) return false;
  --t.live;
  if (t.recovering) {
    std::erase_if(*t.recovering, [conn](const Recovering& r) { return r.conn == conn; });
    if (t.recovering->empty()) t.recovering.reset();
  }
  if (t.iterating > 0) {
    // A delivery is walking the list by index: leave a hole, compact after.
    *pos = nullptr;
    t.has_holes = true;
    return t.live == 0;
  }
  *pos = t.subscribers.back();  // order among subscribers carries no meaning
  t.subscribers.pop_back();
  if (t.subscribers.empty()) {
    topics_.erase(it);
    return true;
  }
  return false;
}

bool TopicTable::unsubscribe(std::string_view name, WsConnection* conn, bool& last) {
  flush();  // the batch was published while this subscriber was here
  last = false;
  auto m = memberships_.find(conn);
  if (m == memberships_.end()) return false;
  auto& names = m->second;
  auto pos = std::find_if(names.begin(), names.end(), [&](const std::string* n) { return *n == name; });
  if (pos == names.end()) return false;
  *pos = names.back();
  names.pop_back();
  if (names.empty()) memberships_.erase(m);
  last = remove(name, conn);
  return true;
}

void TopicTable::begin_recovery(std::string_view name, WsConnection* conn, StreamOffset have, bool pending) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return;
  Topic& t = it->second;
  if (!t.recovering) t.recovering = std::make_unique<std::vector<Recovering>>();
  Recovering r;
  r.conn = conn;
  r.pending = pending;
  r.have = have;
  t.recovering->push_back(std::move(r));
}

TopicTable::Recovering* TopicTable::recovering(std::string_view name, WsConnection* conn) {
  auto it = topics_.find(name);
  if (it == topics_.end() || !it->second.recovering) return nullptr;
  for (Recovering& r : *it->second.recovering) {
    if (r.conn == conn) return &r;
  }
  return nullptr;
}

bool TopicTable::admit(Topic& t, WsConnection* c, const SharedFrame& frame,
                       const std::optional<StreamOffset>& offset) {
  auto& list = *t.recovering;
  auto r = std::find_if(list.begin(), list.end(), [c](const Recovering& x) { return x.conn == c; });
  if (r == list.end()) return true;
  if (r->pending) {
    if (r->held.size() >= kMaxHeld) {
      r->held.erase(r->held.begin());
      r->overflowed = true;
    }
    r->held.emplace_back(offset, frame);
    return false;
  }
  if (!offset) return true;                // delivered while the history could not be written
  if (*offset <= r->have) return false;    // it has this one from the history
  list.erase(r);                           // caught up: from here on, an ordinary subscriber
  if (list.empty()) t.recovering.reset();
  return true;
}

void TopicTable::deliver(std::string_view name, const SharedFrame& frame, uint64_t except_id,
                         const std::optional<StreamOffset>& offset) {
  if (flushing_ || loop_ == nullptr) {
    // Within a batch's delivery (a subscriber's close publishing, say): at
    // once, as it would have been without batches.
    const Pending one{frame, except_id, offset};
    deliver_now(name, &one, 1);
    return;
  }
  if (!pending_.empty() && name != pending_topic_) flush_pending();  // topics keep their order too
  if (pending_.empty()) {
    if (!topics_.contains(name)) return;  // no subscriber here: nothing to hold
    pending_topic_.assign(name);
  }
  pending_.push_back(Pending{frame, except_id, offset});
  if (pending_.size() >= kMaxBatch) {
    flush_pending();
  } else if (!flush_deferred_) {
    // Deferred work runs after this turn's handlers and before the sockets'
    // writes; asked for during those writes, it runs at the start of the
    // next turn, which then does not wait.
    flush_deferred_ = true;
    loop_->defer([this] {
      flush_deferred_ = false;
      flush();
    });
  }
}

void TopicTable::flush_pending() {
  std::vector<Pending> batch;
  batch.swap(pending_);
  pending_.swap(spare_);  // a publish during the delivery starts a new batch
  flushing_ = true;
  deliver_now(pending_topic_, batch.data(), batch.size());
  flushing_ = false;
  batch.clear();
  if (spare_.capacity() < batch.capacity()) spare_.swap(batch);
}

void TopicTable::deliver_now(std::string_view name, const Pending* batch, size_t count) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return;
  Topic& t = it->second;
  ++t.iterating;
  // One compressed variant per message, shared by the subscribers that
  // compress alike.
  CompressedVariant one;
  std::vector<CompressedVariant> many(count > 1 ? count : 0);
  CompressedVariant* compressed = count > 1 ? many.data() : &one;
  // Subscribers added during the walk miss these messages: they joined after them.
  const size_t n = t.subscribers.size();
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < count; ++k) {
      // Read again for each message: a send may close the subscriber.
      WsConnection* c = t.subscribers[i];
      if (c == nullptr) break;
      const Pending& m = batch[k];
      if (c->id() == m.except_id) continue;
      if (t.recovering && !admit(t, c, m.frame, m.offset)) continue;
      c->send_shared(m.frame, compressed[k]);
    }
  }
  if (--t.iterating == 0 && t.has_holes) {
    std::erase(t.subscribers, nullptr);
    t.has_holes = false;
    // By key: a subscribe during the walk may have rehashed the table, which
    // keeps `t` valid but not `it`.
    if (t.subscribers.empty()) topics_.erase(std::string(name));
  }
}

size_t TopicTable::subscriber_count(std::string_view name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? 0 : it->second.live;
}

}  // namespace windlass::detail
