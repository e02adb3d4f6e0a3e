// A per-loop slab: fixed-size slots carved from chunks of many, so a
// connection costs its object's size and nothing else — no allocator
// header, no rounding to a size class, no fragmentation between the small
// objects of different connections. Chunks are kept until the slab is
// destroyed (with its loop), which also keeps freed slots readable: the
// id check of a stale Connection handle reads memory that is still ours.
//
// A bitmap per chunk marks the live slots, so the I/O layer's sweep can
// visit every connection without a list threaded through them (two
// pointers per connection saved). Loop thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace windlass::detail {

class Slab {
 public:
  // `init_slot` runs once on every slot when its chunk is made (before
  // any use), for parts of a slot that outlive the objects placed in it.
  explicit Slab(size_t slot_size, size_t align = alignof(std::max_align_t), size_t slots_per_chunk = 256,
                std::function<void(void*)> init_slot = {})
      : align_(align < alignof(void*) ? alignof(void*) : align),
        slot_size_((slot_size + align_ - 1) / align_ * align_),
        per_chunk_(slots_per_chunk),
        init_slot_(std::move(init_slot)) {}
  ~Slab() {
    for (auto& c : chunks_) ::operator delete(c.memory, std::align_val_t(align_));
  }
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  // Uninitialised memory for one object of slot_size() bytes.
  void* allocate() {
    if (free_.empty()) grow();
    const uint32_t ref = free_.back();
    free_.pop_back();
    Chunk& c = chunks_[ref / per_chunk_];
    const size_t i = ref % per_chunk_;
    c.live[i / 64] |= uint64_t{1} << (i % 64);
    ++live_;
    return c.memory + i * slot_size_;
  }

  // Gives a slot back (its object already destroyed).
  void free(void* p) noexcept {
    auto* b = static_cast<std::byte*>(p);
    // The chunk is the last one starting at or below p (bisection over
    // the chunks sorted by address).
    auto it = std::upper_bound(by_address_.begin(), by_address_.end(), b,
                               [](const std::byte* x, const std::pair<std::byte*, uint32_t>& e) { return x < e.first; });
    if (it == by_address_.begin()) return;
    --it;
    const uint32_t ci = it->second;
    Chunk& c = chunks_[ci];
    const size_t i = static_cast<size_t>(b - c.memory) / slot_size_;
    if (i >= per_chunk_) return;  // not ours
    c.live[i / 64] &= ~(uint64_t{1} << (i % 64));
    --live_;
    free_.push_back(static_cast<uint32_t>(ci * per_chunk_ + i));
  }

  // Calls fn(void*) for every live slot. Slots freed during the walk are
  // skipped once freed; slots allocated during it may or may not be seen.
  template <class F>
  void for_each_live(F&& fn) {
    for (size_t ci = 0; ci < chunks_.size(); ++ci) {
      for (size_t w = 0; w < chunks_[ci].live.size(); ++w) {
        uint64_t bits = chunks_[ci].live[w];
        while (bits != 0) {
          const unsigned bit = static_cast<unsigned>(__builtin_ctzll(bits));
          bits &= bits - 1;
          const size_t i = w * 64 + bit;
          if (chunks_[ci].live[w] & (uint64_t{1} << bit)) fn(static_cast<void*>(chunks_[ci].memory + i * slot_size_));
        }
      }
    }
  }

  size_t slot_size() const noexcept { return slot_size_; }
  size_t live() const noexcept { return live_; }
  size_t capacity() const noexcept { return chunks_.size() * per_chunk_; }

 private:
  struct Chunk {
    std::byte* memory;
    std::vector<uint64_t> live;
  };

  void grow() {
    auto* memory = static_cast<std::byte*>(::operator new(per_chunk_ * slot_size_, std::align_val_t(align_)));
    const size_t ci = chunks_.size();
    chunks_.push_back(Chunk{memory, std::vector<uint64_t>((per_chunk_ + 63) / 64, 0)});
    by_address_.insert(std::upper_bound(by_address_.begin(), by_address_.end(), std::make_pair(memory, uint32_t{0})),
                       std::make_pair(memory, static_cast<uint32_t>(ci)));
    if (init_slot_) {
      for (size_t i = 0; i < per_chunk_; ++i) init_slot_(memory + i * slot_size_);
    }
    // Handed out from the lowest address up.
    free_.reserve(free_.size() + per_chunk_);
    for (size_t i = per_chunk_; i-- > 0;) free_.push_back(static_cast<uint32_t>(ci * per_chunk_ + i));
  }

  size_t align_;
  size_t slot_size_;
  size_t per_chunk_;
  std::function<void(void*)> init_slot_;
  std::vector<Chunk> chunks_;
  std::vector<std::pair<std::byte*, uint32_t>> by_address_;  // chunk base, chunk index; sorted
  std::vector<uint32_t> free_;  // slot references (chunk * per_chunk + index), a stack
  size_t live_ = 0;
};

}  // namespace windlass::detail
