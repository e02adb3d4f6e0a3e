// A log-linear latency histogram: fixed memory, no allocation per sample.
//
// Values below 2^kSubBits nanoseconds get one bucket each; above that every
// power of two is split into 2^kSubBits equal buckets, so a reported value is
// within 1/2^kSubBits (1.6 %) of the true one at any magnitude, from
// nanoseconds to hours. The same idea as HdrHistogram, in a page of code.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace windlass::load {

class LatencyHistogram {
 public:
  void record(uint64_t ns) noexcept {
    ++buckets_[bucket_of(ns)];
    ++count_;
    max_ = std::max(max_, ns);
    sum_ += ns;
  }

  void reset() noexcept { *this = LatencyHistogram{}; }

  uint64_t count() const noexcept { return count_; }
  uint64_t max() const noexcept { return max_; }
  uint64_t mean() const noexcept { return count_ ? sum_ / count_ : 0; }

  // The smallest recorded value v such that at least `fraction` of the
  // samples are <= v, rounded up to its bucket's upper edge (never past max).
  uint64_t percentile(double fraction) const noexcept {
    if (count_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(fraction * static_cast<double>(count_) + 0.5);
    const uint64_t wanted = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= wanted) return std::min(upper_edge(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 6;
  static constexpr uint64_t kSubCount = uint64_t{1} << kSubBits;
  // One linear run of kSubCount exact buckets, then kSubCount per octave for
  // octaves kSubBits..63.
  static constexpr size_t kBuckets = kSubCount * (64 - kSubBits + 1);

  static size_t bucket_of(uint64_t v) noexcept {
    if (v < kSubCount) return static_cast<size_t>(v);
    const unsigned octave = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    const unsigned shift = octave - kSubBits;
    const uint64_t sub = (v >> shift) - kSubCount;  // in [0, kSubCount)
    return static_cast<size_t>(kSubCount * (shift + 1) + sub);
  }

  static uint64_t upper_edge(size_t bucket) noexcept {
    if (bucket < kSubCount) return bucket;
    const uint64_t shift = bucket / kSubCount - 1;
    const uint64_t sub = bucket % kSubCount;
    return ((kSubCount + sub + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace windlass::load
