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

bool TopicTable::subscribe(std::string_view name, WsConnection* conn) {
  auto it = topics_.find(name);
  if (it == topics_.end()) it = topics_.emplace(std::string(name), Topic{}).first;
  auto& subs = it->second.subscribers;
  if (std::find(subs.begin(), subs.end(), conn) != subs.end()) return false;
  subs.push_back(conn);
  return true;
}

bool TopicTable::unsubscribe(std::string_view name, WsConnection* conn) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return false;
  Topic& t = it->second;
  auto pos = std::find(t.subscribers.begin(), t.subscribers.end(), conn);
  if (pos == t.subscribers.end()) return false;
  if (t.iterating > 0) {
    // A delivery is walking the list by index: leave a hole, compact after.
    *pos = nullptr;
    t.has_holes = true;
  } else {
    *pos = t.subscribers.back();  // order among subscribers carries no meaning
    t.subscribers.pop_back();
    if (t.subscribers.empty()) topics_.erase(it);
  }
  return true;
}

void TopicTable::deliver(std::string_view name, const SharedFrame& frame, uint64_t except_id) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return;
  Topic& t = it->second;
  ++t.iterating;
  CompressedVariant compressed;
  // Subscribers added during the walk miss this message: they joined after it.
  size_t n = t.subscribers.size();
  for (size_t i = 0; i < n; ++i) {
    WsConnection* c = t.subscribers[i];
    if (c != nullptr && c->id() != except_id) c->send_shared(frame, compressed);
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
  if (it == topics_.end()) return 0;
  size_t n = 0;
  for (auto* c : it->second.subscribers) n += c != nullptr;
  return n;
}

void Hub::publish(std::string_view topic, SharedFrame frame, uint64_t except_id) {
  for (const Member& m : members_) {
    if (m.loop->in_loop_thread()) {
      m.table->deliver(topic, frame, except_id);
    } else {
      m.loop->post([table = m.table, t = std::string(topic), frame, except_id] {
        table->deliver(t, frame, except_id);
      });
    }
  }
}

}  // namespace windlass::detail
