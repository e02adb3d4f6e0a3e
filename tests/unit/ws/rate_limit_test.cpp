// Per-connection token buckets over simulated time.
#include "ws/rate_limit.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

namespace windlass::detail {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

// An arbitrary start, far from the clock's epoch like a real steady_clock.
const Clock::time_point t0 = Clock::time_point{} + 12345h + 678ns;

RateLimitConfig config(RateLimit limit, uint64_t max_message_size = 0) {
  std::string error;
  auto c = RateLimitConfig::compile(limit, max_message_size, error);
  EXPECT_TRUE(c.has_value()) << error;
  return c.value_or(RateLimitConfig{});
}

std::string compile_error(RateLimit limit, uint64_t max_message_size = 0) {
  std::string error;
  EXPECT_FALSE(RateLimitConfig::compile(limit, max_message_size, error).has_value());
  return error;
}

TEST(RateLimit, refuses_settings_that_cannot_work) {
  EXPECT_EQ(compile_error({.burst_messages = 5}),
            "rate_limit.burst_messages is set but messages_per_second is 0 (no message limit)");
  EXPECT_EQ(compile_error({.burst_bytes = 5}),
            "rate_limit.burst_bytes is set but bytes_per_second is 0 (no byte limit)");
  EXPECT_EQ(
      compile_error({.bytes_per_second = 1000, .burst_bytes = 65536}, 1 << 20),
      "rate_limit.burst_bytes (65536) is below max_message_size (1048576): a message that large could never "
      "pass");
  EXPECT_EQ(
      compile_error({.bytes_per_second = 1000}, 1 << 20),
      "rate_limit.burst_bytes (1000) is below max_message_size (1048576): a message that large could never "
      "pass");
  EXPECT_EQ(compile_error({.bytes_per_second = 1, .burst_bytes = kMaxBurst + 1}),
            "rate_limit.burst_bytes (18446744073710) is above 18446744073709");
  EXPECT_EQ(compile_error({.bytes_per_second = kMaxBurst + 1}),
            "rate_limit.bytes_per_second (18446744073710) is above 18446744073709");
}

TEST(RateLimit, is_off_when_everything_is_zero) {
  RateLimitConfig c = config({});
  EXPECT_FALSE(c.enabled());
  RateLimiter r(c, t0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(r.allow(c, t0, 1 << 20));
}

TEST(RateLimit, allows_the_burst_at_once_then_the_rate) {
  RateLimitConfig c = config({.messages_per_second = 10, .burst_messages = 20});
  EXPECT_TRUE(c.enabled());
  RateLimiter r(c, t0);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(r.allow(c, t0, 0)) << i;
  EXPECT_FALSE(r.allow(c, t0, 0));
  EXPECT_FALSE(r.allow(c, t0 + 99'999us, 0));  // 0.999.. of a token
  EXPECT_TRUE(r.allow(c, t0 + 100ms, 0));      // exactly one token after 1/10 s
  EXPECT_FALSE(r.allow(c, t0 + 100ms, 0));
  // A long pause refills to the burst, no further.
  EXPECT_EQ(r.messages_available(), 0u);
  EXPECT_TRUE(r.allow(c, t0 + 1h, 0));
  EXPECT_EQ(r.messages_available(), 19u);
}

TEST(RateLimit, burst_defaults_to_one_second_of_rate) {
  RateLimitConfig c = config({.messages_per_second = 5, .bytes_per_second = 1000});
  RateLimiter r(c, t0);
  EXPECT_EQ(r.messages_available(), 5u);
  EXPECT_EQ(r.bytes_available(), 1000u);
}

TEST(RateLimit, limits_bytes_with_their_own_bucket) {
  RateLimitConfig c = config({.bytes_per_second = 1000, .burst_bytes = 4000});
  RateLimiter r(c, t0);
  EXPECT_TRUE(r.allow(c, t0, 3000));
  EXPECT_FALSE(r.allow(c, t0, 1001));
  EXPECT_TRUE(r.allow(c, t0, 1000));
  EXPECT_FALSE(r.allow(c, t0, 1));
  EXPECT_TRUE(r.allow(c, t0 + 1ms, 1));  // 1000 bytes/s is one byte per millisecond
  EXPECT_FALSE(r.allow(c, t0 + 1ms, 1));
  // More than the burst never passes, however long the wait.
  EXPECT_FALSE(r.allow(c, t0 + 24h, 4001));
  EXPECT_TRUE(r.allow(c, t0 + 24h, 4000));
  // Messages are not limited here: many empty ones pass.
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(r.allow(c, t0 + 24h, 0));
}

TEST(RateLimit, charges_nothing_when_either_bucket_refuses) {
  RateLimitConfig c = config({.messages_per_second = 2, .bytes_per_second = 100});
  RateLimiter r(c, t0);
  EXPECT_FALSE(r.allow(c, t0, 101));  // bytes refuse: the message is not taken
  EXPECT_EQ(r.messages_available(), 2u);
  EXPECT_TRUE(r.allow(c, t0, 50));
  EXPECT_TRUE(r.allow(c, t0, 50));
  EXPECT_FALSE(r.allow(c, t0, 0));  // messages refuse: no bytes are taken
  EXPECT_EQ(r.bytes_available(), 0u);
  EXPECT_TRUE(r.allow(c, t0 + 500ms, 50));
}

TEST(RateLimit, charges_message_counts_and_chunks) {
  // A fragmented message: bytes per chunk, the message once.
  RateLimitConfig c = config({.messages_per_second = 1, .bytes_per_second = 100});
  RateLimiter r(c, t0);
  EXPECT_TRUE(r.allow(c, t0, 40, 1));
  EXPECT_TRUE(r.allow(c, t0, 40, 0));
  EXPECT_FALSE(r.allow(c, t0, 40, 0));
  EXPECT_TRUE(r.allow(c, t0, 20, 0));
  EXPECT_FALSE(r.allow(c, t0, 0, 1));
}

TEST(RateLimit, does_not_drift_over_an_hour_of_odd_steps) {
  // 7 messages per second polled at steps that are no round number of
  // microseconds or of the token period: greedy consumption must give
  // exactly burst + floor(7 * elapsed_us / 10^6) messages, at every step.
  RateLimitConfig c = config({.messages_per_second = 7, .burst_messages = 3});
  RateLimiter r(c, t0);
  std::mt19937_64 rng(7);
  uint64_t allowed = 0;
  Clock::time_point now = t0;
  while (r.allow(c, now, 0)) ++allowed;  // the burst, at once
  EXPECT_EQ(allowed, 3u);
  const auto start_us = std::chrono::floor<std::chrono::microseconds>(t0.time_since_epoch());
  while (now < t0 + 1h) {
    // Under 2/7 s a step: less than one token left plus less than two
    // gained stays under the cap of three, so no refill is lost to it.
    now += std::chrono::nanoseconds(1 + rng() % 280'000'000);
    while (r.allow(c, now, 0)) ++allowed;
    const auto elapsed_us = static_cast<uint64_t>(
        (std::chrono::floor<std::chrono::microseconds>(now.time_since_epoch()) - start_us).count());
    ASSERT_EQ(allowed, 3 + 7 * elapsed_us / 1'000'000);
  }
  EXPECT_GT(allowed, 7u * 3600);
}

TEST(RateLimit, never_allows_more_than_burst_plus_rate_times_time) {
  RateLimitConfig c = config({.messages_per_second = 1000,
                              .burst_messages = 50,
                              .bytes_per_second = 1 << 20,
                              .burst_bytes = 1 << 22});
  RateLimiter r(c, t0);
  std::mt19937_64 rng(1);
  uint64_t messages = 0, bytes = 0;
  Clock::time_point now = t0;
  for (int i = 0; i < 200'000; ++i) {
    now += std::chrono::nanoseconds(rng() % 2'000'000);
    const uint64_t size = rng() % 8192;
    if (r.allow(c, now, size)) {
      ++messages;
      bytes += size;
    }
    const auto us =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - t0).count()) + 1;
    ASSERT_LE(messages, 50 + 1000 * us / 1'000'000);
    ASSERT_LE(bytes, (1u << 22) + (uint64_t{1} << 20) * us / 1'000'000);
  }
  EXPECT_GT(messages, 1000u);
}

TEST(RateLimit, ignores_time_running_backwards) {
  RateLimitConfig c = config({.messages_per_second = 1, .burst_messages = 1});
  RateLimiter r(c, t0 + 10s);
  EXPECT_TRUE(r.allow(c, t0 + 10s, 0));
  EXPECT_FALSE(r.allow(c, t0, 0));  // earlier: no refill, and no credit from the jump back
  EXPECT_FALSE(r.allow(c, t0 + 10s + 999ms, 0));
  EXPECT_TRUE(r.allow(c, t0 + 11s, 0));
}

TEST(RateLimit, does_not_overflow_at_the_extremes) {
  RateLimitConfig c = config({.messages_per_second = UINT32_MAX,
                              .burst_messages = UINT32_MAX,
                              .bytes_per_second = kMaxBurst,
                              .burst_bytes = kMaxBurst});
  RateLimiter r(c, t0);
  EXPECT_TRUE(r.allow(c, t0, kMaxBurst, UINT32_MAX));
  EXPECT_FALSE(r.allow(c, t0, 1));
  EXPECT_TRUE(r.allow(c, Clock::time_point::max(), kMaxBurst, UINT32_MAX));  // refill from empty, clamped
  EXPECT_FALSE(r.allow(c, Clock::time_point::max(), UINT64_MAX));  // bytes * 10^6 would overflow: refused
  RateLimitConfig slow = config({.bytes_per_second = 1, .burst_bytes = kMaxBurst});
  RateLimiter s(slow, t0);
  EXPECT_FALSE(s.allow(slow, t0, UINT64_MAX));
  EXPECT_TRUE(s.allow(slow, t0, kMaxBurst));
}

TEST(RateLimit, fits_in_three_words) {
  static_assert(sizeof(RateLimiter) == 3 * sizeof(uint64_t));
  SUCCEED();
}

}  // namespace
}  // namespace windlass::detail
