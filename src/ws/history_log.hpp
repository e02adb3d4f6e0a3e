// One topic's history in this process's memory (the local broker's, when
// no bridge keeps the history): the rules of history.hpp, the same ones
// the Redis bridge's scripts follow with a Redis Stream.
//
// Offsets are made the way Redis makes stream ids: <ms>-0 for the first
// message of a millisecond, then <ms>-1, ...; never backwards, even if the
// clock is. A new log takes a position of its own first (the way the
// bridge creates an empty stream), so that its position is later than
// every offset an earlier log of the same topic gave out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>

#include "windlass/history.hpp"

namespace windlass::detail {

class HistoryLog {
 public:
  explicit HistoryLog(uint64_t now_ms) : last_{now_ms, 0}, dropped_through_{now_ms, 0}, touched_ms_(now_ms) {}

  StreamOffset append(MessageKind kind, std::string_view payload, uint64_t now_ms, const HistoryOptions& options);
  // What a subscriber coming back from `since` gets (nullopt: a fresh one).
  HistoryRead read(std::optional<StreamOffset> since, uint64_t now_ms, const HistoryOptions& options);

  StreamOffset position() const noexcept { return last_; }
  size_t size() const noexcept { return entries_.size(); }
  uint64_t touched_ms() const noexcept { return touched_ms_; }

 private:
  StreamOffset make(uint64_t now_ms) noexcept {
    return now_ms > last_.ms ? StreamOffset{now_ms, 0} : last_.next();
  }
  void trim(uint64_t now_ms, const HistoryOptions& options);

  StreamOffset last_;            // the last offset made
  StreamOffset dropped_through_; // the newest offset no longer kept (or the log's start)
  std::deque<HistoryEntry> entries_;
  uint64_t touched_ms_;
};

}  // namespace windlass::detail
