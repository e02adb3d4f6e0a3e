// A per-loop pool of byte buffers. Write queues and message reassembly take
// a buffer when they need one and give it back when it drains, so steady
// traffic allocates nothing and an idle connection holds no buffer at all.
// Loop thread only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace windlass::detail {

class BufferPool {
 public:
  // An empty buffer, with capacity if a pooled one was free.
  std::string take() {
    if (free_.empty()) return {};
    std::string s = std::move(free_.back());
    free_.pop_back();
    return s;
  }

  // Gives `s` (empty) a pooled buffer's capacity when it has none of its own.
  void refill(std::string& s) {
    if (s.capacity() <= kInlineCapacity && !free_.empty()) {
      s = std::move(free_.back());
      free_.pop_back();
    }
  }

  // Returns a buffer. Very large ones are freed (one huge message must not
  // pin its memory), and so is everything past the pool's size.
  void give(std::string&& s) {
    if (s.capacity() <= kInlineCapacity || s.capacity() > kMaxPooledCapacity || free_.size() >= kMaxPooled)
      return;
    s.clear();
    free_.push_back(std::move(s));
  }

  size_t size() const noexcept { return free_.size(); }

  static constexpr size_t kMaxPooledCapacity = 256 * 1024;
  static constexpr size_t kMaxPooled = 64;
  // What a std::string holds without a heap block of its own (its small
  // string buffer): nothing to pool.
  static constexpr size_t kInlineCapacity = 15;

 private:
  std::vector<std::string> free_;
};

}  // namespace windlass::detail
