// Topics: publish once, deliver to every subscriber on every loop.
//
// Each loop has its own TopicTable, touched only by its thread. A publish
// encodes the frame once; subscribers on the publishing loop get it at
// once, and every other loop gets one posted task carrying the same
// shared frame, so the cost per extra loop is one mailbox entry, not one
// copy per recipient. Within a loop, a small frame is copied into each
// recipient's write buffer (cheaper than sharing it, and it coalesces with
// the recipient's other pending frames into one writev per loop turn); a
// large one is queued by reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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

class TopicTable {
 public:
  struct Topic {
    std::vector<WsConnection*> subscribers;
    int iterating = 0;          // > 0 while a delivery walks the list
    bool has_holes = false;     // entries nulled during a delivery
  };

  // Returns false if already subscribed.
  bool subscribe(std::string_view name, WsConnection* conn);
  bool unsubscribe(std::string_view name, WsConnection* conn);
  // Delivers `frame` to the topic's subscribers except the connection with
  // id `except_id` (0: none). Subscribers may unsubscribe, close or
  // subscribe others while it runs.
  void deliver(std::string_view name, const SharedFrame& frame, uint64_t except_id);
  size_t subscriber_count(std::string_view name) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, Topic, Hash, std::equal_to<>> topics_;
};

// All loops of an App; publish() may be called from any thread.
class Hub {
 public:
  struct Member {
    Loop* loop;
    TopicTable* table;
  };
  void add(Loop* loop, TopicTable* table) { members_.push_back(Member{loop, table}); }
  void publish(std::string_view topic, SharedFrame frame, uint64_t except_id);

 private:
  std::vector<Member> members_;  // fixed before the loops start
};

// Encodes one unmasked frame (header and payload) for sharing.
SharedFrame make_shared_frame(bool binary, std::string_view payload);

}  // namespace windlass::detail
