// Per-loop counters: plain integers written by one thread, read by any.
//
// A Counter has one writer (its loop's thread), so an increment is a
// relaxed load and store — on x86-64 an ordinary add, no lock prefix, no
// shared cache line between loops — and a scrape from another thread reads
// a value that is at worst a moment old. Totals are sums over loops, taken
// at scrape time (Drogon's mutex per increment is what this avoids).
#pragma once

#include <atomic>
#include <cstdint>

namespace windlass::detail {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  void set(uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace windlass::detail
