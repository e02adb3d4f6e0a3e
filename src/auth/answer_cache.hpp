// The auth proxy's cache of answers: a map from a 32-byte key (a SHA-256
// of the forwarded credentials) to a value that expires, bounded by a
// number of entries, least recently used evicted first. Not thread-safe:
// AuthProxy holds it under its mutex. No clock of its own: the caller
// passes the time, so tests control it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <unordered_map>
#include <utility>

namespace windlass::detail {

using CacheKey = std::array<uint8_t, 32>;

struct CacheKeyHash {
  // The key is already a cryptographic hash: any 8 bytes of it are uniform.
  size_t operator()(const CacheKey& k) const noexcept {
    size_t h = 0;
    std::memcpy(&h, k.data(), sizeof h);
    return h;
  }
};

template <class Value>
class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AnswerCache(size_t capacity) : capacity_(capacity) {}

  // The value of `key` unless absent or expired at `now` (an expired entry
  // is dropped); a hit becomes the most recently used.
  const Value* find(const CacheKey& key, Clock::time_point now) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    if (now >= it->second->expires) {
      order_.erase(it->second);
      index_.erase(it);
      return nullptr;
    }
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->value;
  }

  // Stores (or replaces) `key`'s value until `expires`, evicting the least
  // recently used entries past the capacity. Nothing with capacity 0.
  void put(const CacheKey& key, Value value, Clock::time_point expires) {
    if (capacity_ == 0) return;
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->value = std::move(value);
      it->second->expires = expires;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.push_front(Entry{key, std::move(value), expires});
    index_.emplace(key, order_.begin());
    while (order_.size() > capacity_) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
  }

  void clear() noexcept {
    index_.clear();
    order_.clear();
  }
  size_t size() const noexcept { return order_.size(); }
  size_t capacity() const noexcept { return capacity_; }

 private:
  struct Entry {
    CacheKey key;
    Value value;
    Clock::time_point expires;
  };
  size_t capacity_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<CacheKey, typename std::list<Entry>::iterator, CacheKeyHash> index_;
};

}  // namespace windlass::detail
