#include "ws/history_log.hpp"

#include <charconv>

namespace windlass {

std::optional<StreamOffset> StreamOffset::parse(std::string_view text) noexcept {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size() || text.size() > 41) return std::nullopt;
  StreamOffset o;
  const char* end = text.data() + dash;
  auto a = std::from_chars(text.data(), end, o.ms);
  if (a.ec != std::errc() || a.ptr != end) return std::nullopt;
  end = text.data() + text.size();
  auto b = std::from_chars(text.data() + dash + 1, end, o.seq);
  if (b.ec != std::errc() || b.ptr != end) return std::nullopt;
  return o;
}

std::string StreamOffset::str() const {
  char buf[42];
  char* p = std::to_chars(buf, buf + 20, ms).ptr;
  *p++ = '-';
  p = std::to_chars(p, buf + sizeof buf, seq).ptr;
  return std::string(buf, p);
}

std::string_view describe(RecoveryOutcome outcome) noexcept {
  switch (outcome) {
    case RecoveryOutcome::fresh: return "fresh";
    case RecoveryOutcome::recovered: return "recovered";
    case RecoveryOutcome::too_old: return "too_old";
    case RecoveryOutcome::invalid_offset: return "invalid_offset";
    case RecoveryOutcome::unavailable: return "unavailable";
    case RecoveryOutcome::no_history: return "no_history";
  }
  return "unknown";
}

}  // namespace windlass

namespace windlass::detail {

void HistoryLog::trim(uint64_t now_ms, const HistoryOptions& options) {
  const auto age = static_cast<uint64_t>(options.max_age.count());
  const uint64_t oldest_ms = now_ms > age ? now_ms - age : 0;
  while (!entries_.empty() && (entries_.size() > options.max_messages || entries_.front().offset.ms < oldest_ms)) {
    dropped_through_ = entries_.front().offset;
    entries_.pop_front();
  }
}

StreamOffset HistoryLog::append(MessageKind kind, std::string_view payload, uint64_t now_ms,
                                const HistoryOptions& options) {
  last_ = make(now_ms);
  touched_ms_ = now_ms;
  entries_.push_back(HistoryEntry{last_, kind, std::string(payload)});
  trim(now_ms, options);
  return last_;
}

HistoryRead HistoryLog::read(std::optional<StreamOffset> since, uint64_t now_ms, const HistoryOptions& options) {
  trim(now_ms, options);
  touched_ms_ = now_ms;
  HistoryRead r;
  r.position = last_;
  if (!since) {
    r.outcome = RecoveryOutcome::fresh;
  } else if (*since > last_) {
    r.outcome = RecoveryOutcome::invalid_offset;
  } else if (*since < dropped_through_) {
    r.outcome = RecoveryOutcome::too_old;
  } else {
    r.outcome = RecoveryOutcome::recovered;
    for (const HistoryEntry& e : entries_) {
      if (e.offset > *since) r.missed.push_back(e);
    }
  }
  return r;
}

}  // namespace windlass::detail
