// Per-connection rate limits: a token bucket for messages and one for
// payload bytes (WsOptions::rate_limit). A connection that goes over is
// closed with 1008, policy violation (RFC 6455 §7.4.1).
//
// Pure and header-only: no clock of its own (the caller passes the loop's
// time), no allocation, no lock (a connection lives on one loop).
//
// Integer arithmetic with no drift: a bucket's level is kept in credits,
// a millionth of a token each, and time in whole microseconds. A bucket
// refilling at r tokens per second gains exactly r credits per microsecond,
// so refilling is one multiplication and nothing is rounded away, however
// often or rarely allow() is called: over any span of time a bucket gains
// exactly r * (whole microseconds elapsed) credits. (Time is floored to
// the microsecond the same way on every call, so the sub-microsecond parts
// are never lost either: they are counted once the next microsecond
// begins.)
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "windlass/access.hpp"

namespace windlass::detail {

inline constexpr uint64_t kCreditsPerToken = 1'000'000;  // one per microsecond of a 1 token/s rate
// The largest burst whose credits fit in 64 bits (about 18.4 TB of bytes).
inline constexpr uint64_t kMaxBurst = std::numeric_limits<uint64_t>::max() / kCreditsPerToken;

// RateLimit, compiled: shared read-only by every connection of a route,
// so a connection's own state is only its two levels and a time.
class RateLimitConfig {
 public:
  // `max_message_size`: the route's limit, so a byte burst too small for
  // one maximal message is refused here rather than closing every
  // connection that sends one (0 skips this check). On a bad setting
  // returns nullopt and sets `error`, e.g.
  //   rate_limit.burst_bytes (65536) is below max_message_size (1048576): ...
  static std::optional<RateLimitConfig> compile(const RateLimit& limit, uint64_t max_message_size,
                                                std::string& error) {
    RateLimitConfig c;
    if (limit.messages_per_second == 0 && limit.burst_messages != 0) {
      error = "rate_limit.burst_messages is set but messages_per_second is 0 (no message limit)";
      return std::nullopt;
    }
    if (limit.bytes_per_second == 0 && limit.burst_bytes != 0) {
      error = "rate_limit.burst_bytes is set but bytes_per_second is 0 (no byte limit)";
      return std::nullopt;
    }
    if (limit.messages_per_second != 0) {
      const uint64_t burst = limit.burst_messages != 0 ? limit.burst_messages : limit.messages_per_second;
      c.msg_rate_ = limit.messages_per_second;
      c.msg_cap_ = burst * kCreditsPerToken;  // < 2^32 * 10^6: fits
    }
    if (limit.bytes_per_second != 0) {
      const uint64_t burst = limit.burst_bytes != 0 ? limit.burst_bytes : limit.bytes_per_second;
      if (burst > kMaxBurst) {
        error = std::string("rate_limit.") +
                (limit.burst_bytes != 0 ? "burst_bytes (" : "bytes_per_second (") + std::to_string(burst) +
                ") is above " + std::to_string(kMaxBurst);
        return std::nullopt;
      }
      if (max_message_size != 0 && burst < max_message_size) {
        error = "rate_limit.burst_bytes (" + std::to_string(burst) + ") is below max_message_size (" +
                std::to_string(max_message_size) + "): a message that large could never pass";
        return std::nullopt;
      }
      c.byte_rate_ = limit.bytes_per_second;
      c.byte_cap_ = burst * kCreditsPerToken;
    }
    return c;
  }

  bool enabled() const noexcept { return msg_rate_ != 0 || byte_rate_ != 0; }

 private:
  friend class RateLimiter;
  uint64_t msg_rate_ = 0;   // credits per microsecond; 0: no message limit
  uint64_t msg_cap_ = 0;    // credits
  uint64_t byte_rate_ = 0;  // credits per microsecond; 0: no byte limit
  uint64_t byte_cap_ = 0;   // credits
};

// One connection's buckets. Both start full.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;  // Loop::Clock

  RateLimiter() = default;
  RateLimiter(const RateLimitConfig& config, Clock::time_point now) noexcept
      : msg_credit_(config.msg_cap_), byte_credit_(config.byte_cap_), last_us_(micros(now)) {}

  // Charges `messages` and `bytes` if both buckets hold enough; otherwise
  // charges nothing and returns false (the caller closes with 1008). A
  // message larger than the byte burst never passes (compile() refuses a
  // burst below max_message_size for that reason). `now` must come from
  // the same clock on every call; time running backwards counts as none.
  bool allow(const RateLimitConfig& config, Clock::time_point now, uint64_t bytes,
             uint32_t messages = 1) noexcept {
    const int64_t t = micros(now);
    if (t > last_us_) {
      const auto elapsed = static_cast<uint64_t>(t - last_us_);
      refill(msg_credit_, config.msg_rate_, config.msg_cap_, elapsed);
      refill(byte_credit_, config.byte_rate_, config.byte_cap_, elapsed);
      last_us_ = t;
    }
    const uint64_t need_msgs = uint64_t{messages} * kCreditsPerToken;  // < 2^32 * 10^6: fits
    if (config.msg_rate_ != 0 && need_msgs > msg_credit_) return false;
    uint64_t need_bytes = 0;
    if (config.byte_rate_ != 0) {
      // Compared in tokens first, so bytes * 10^6 cannot overflow.
      if (bytes > byte_credit_ / kCreditsPerToken) return false;
      need_bytes = bytes * kCreditsPerToken;
      if (need_bytes > byte_credit_) return false;
    }
    if (config.msg_rate_ != 0) msg_credit_ -= need_msgs;
    if (config.byte_rate_ != 0) byte_credit_ -= need_bytes;
    return true;
  }

  // Whole tokens left, for tests and diagnostics.
  uint64_t messages_available() const noexcept { return msg_credit_ / kCreditsPerToken; }
  uint64_t bytes_available() const noexcept { return byte_credit_ / kCreditsPerToken; }

 private:
  static int64_t micros(Clock::time_point t) noexcept {
    return std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
  }

  // Adds rate * elapsed credits, up to cap, without overflowing: if the
  // bucket would pass its cap, it is simply full.
  static void refill(uint64_t& credit, uint64_t rate, uint64_t cap, uint64_t elapsed) noexcept {
    if (rate == 0 || credit >= cap) return;
    const uint64_t missing = cap - credit;
    if (elapsed > missing / rate) {
      credit = cap;  // rate * elapsed > missing
    } else {
      credit += rate * elapsed;  // <= missing
    }
  }

  uint64_t msg_credit_ = 0;
  uint64_t byte_credit_ = 0;
  int64_t last_us_ = 0;
};

// The budget: every WebSocket connection carries one, so both buckets
// together cost three words.
static_assert(sizeof(RateLimiter) <= 24, "RateLimiter should stay three words");

}  // namespace windlass::detail
