// The pure parts of the AMQP input (include/windlass/amqp.hpp), apart
// from the thread that talks to the broker: what it remembers to keep a
// redelivered message from being handed over twice, and its backoff.
// No I/O, no clock of their own (the caller passes the time), no lock:
// each belongs to the input's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <string_view>
#include <vector>

namespace windlass::detail {

using AmqpClock = std::chrono::steady_clock;

// What identifies a message when the broker delivers it again: a
// redelivery carries a new delivery tag (tags count per channel), so only
// the message itself can be compared. 64 bits of hash over the routing
// key, the body and the message-id and timestamp properties: a collision
// among the few hundred remembered messages is not a practical concern.
using AmqpFingerprint = uint64_t;
AmqpFingerprint amqp_fingerprint(std::string_view routing_key, std::string_view body,
                                 std::string_view message_id, uint64_t timestamp) noexcept;

// The deliveries handed over whose acknowledgement the broker may not have
// processed, and, after a connection is lost, the candidates a redelivered
// message is compared with.
//
// On a live connection: acked() after each ack is written; the ack is
// *unconfirmed* until a synchronous method sent after it gets its reply
// (the broker handles a channel's methods in order), then confirmed(n)
// forgets the n oldest. When the connection is lost, every unconfirmed
// ack and every delivery handed over but never acknowledged
// (handed_over_unacked()) becomes a candidate. On the next connection,
// connected() starts the window; a delivery flagged redelivered that
// matches a candidate is a duplicate (take_duplicate() consumes the
// candidate: two identical messages handed over are two candidates). The
// oldest candidates go first past `max_candidates`.
class RedeliveryLedger {
 public:
  RedeliveryLedger(size_t max_candidates, std::chrono::milliseconds window) noexcept
      : max_candidates_(max_candidates), window_(window) {}

  void acked(AmqpFingerprint fp) { unconfirmed_.push_back(fp); }
  size_t unconfirmed() const noexcept { return unconfirmed_.size(); }
  void confirmed(size_t n);

  void handed_over_unacked(AmqpFingerprint fp);
  void connection_lost();
  void connected(AmqpClock::time_point now);

  // True when this delivery went out already: acknowledge it, do not hand it over.
  bool take_duplicate(AmqpFingerprint fp, bool redelivered, AmqpClock::time_point now);
  void expire(AmqpClock::time_point now);
  size_t candidates() const noexcept { return candidates_.size(); }

 private:
  struct Candidate {
    AmqpFingerprint fp;
    AmqpClock::time_point deadline;  // max(): the window has not started (not connected yet)
  };
  void add_candidate(AmqpFingerprint fp);

  size_t max_candidates_;
  std::chrono::milliseconds window_;
  std::deque<AmqpFingerprint> unconfirmed_;
  std::deque<Candidate> candidates_;  // oldest first; searched only for redelivered messages
};

// Reconnection delays: initial, doubling up to max; each one drawn
// uniformly from [d/2, d] so that many nodes that lost the same broker do
// not come back in step.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed) noexcept
      : initial_(initial), max_(max), rng_(seed) {}
  std::chrono::milliseconds next();
  void reset() noexcept { attempt_ = 0; }

 private:
  std::chrono::milliseconds initial_, max_;
  unsigned attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace windlass::detail
