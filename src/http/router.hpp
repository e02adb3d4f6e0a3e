// Route patterns: exact paths in a hash table (the fast path: one lookup),
// and patterns with ":name" segments and a trailing "*", tried only when
// no exact path matches, the most specific match winning.
//
// Matching is on the path as sent (percent-encoded): "/a%2Fb" is one
// segment, and a captured value is a view into the request's path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "windlass/request.hpp"

namespace windlass::detail {

// A compiled pattern. Segment kinds: literal, parameter, rest ("*", last only).
class RoutePattern {
 public:
  // nullopt and `error` set for a malformed pattern: not starting with '/',
  // an empty ":" name, a "*" before the last segment, a repeated name, more
  // than RouteParams::kMax captures.
  static std::optional<RoutePattern> compile(std::string pattern, std::string& error);

  bool exact() const noexcept { return exact_; }
  const std::string& text() const noexcept { return text_; }
  // True when `path` matches; fills `params` (views into path and into this pattern).
  bool match(std::string_view path, RouteParams& params) const noexcept;
  // Specificity for ordering matches: a literal segment outranks a
  // parameter, which outranks "*", compared segment by segment.
  const std::vector<uint8_t>& rank() const noexcept { return rank_; }

 private:
  enum class Kind : uint8_t { literal, param, rest };
  struct Segment {
    Kind kind;
    std::string text;  // literal text, or the parameter's name ("*" for rest)
  };
  std::string text_;
  std::vector<Segment> segments_;
  std::vector<uint8_t> rank_;
  bool exact_ = false;
};

template <class T>
class RouteTable {
 public:
  // False (and `error` set) for a malformed or repeated pattern.
  bool add(std::string pattern, T value, std::string& error) {
    auto compiled = RoutePattern::compile(std::move(pattern), error);
    if (!compiled) return false;
    if (compiled->exact()) {
      if (exact_.contains(compiled->text())) {
        error = "route " + compiled->text() + " is already taken";
        return false;
      }
      exact_.emplace(compiled->text(), std::move(value));
      return true;
    }
    for (const auto& p : patterns_) {
      if (p.pattern.text() == compiled->text()) {
        error = "route " + compiled->text() + " is already taken";
        return false;
      }
    }
    patterns_.push_back(Entry{std::move(*compiled), std::move(value)});
    return true;
  }

  // The value for `path`, with its captures in `params`; null if none matches.
  const T* find(std::string_view path, RouteParams& params) const {
    params.clear();
    if (!exact_.empty()) {
      if (auto it = exact_.find(path); it != exact_.end()) return &it->second;
    }
    const Entry* best = nullptr;
    RouteParams candidate;
    for (const auto& e : patterns_) {
      candidate.clear();
      if (!e.pattern.match(path, candidate)) continue;
      if (best == nullptr || e.pattern.rank() > best->pattern.rank()) {
        best = &e;
        params = candidate;
      }
    }
    return best != nullptr ? &best->value : nullptr;
  }
  bool empty() const noexcept { return exact_.empty() && patterns_.empty(); }

  // Every value, exact paths first (for wiring and stats).
  template <class F>
  void for_each(F&& fn) {
    for (auto& [path, v] : exact_) fn(path, v);
    for (auto& e : patterns_) fn(e.pattern.text(), e.value);
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
  };
  struct Entry {
    RoutePattern pattern;
    T value;
  };
  std::unordered_map<std::string, T, Hash, std::equal_to<>> exact_;
  std::vector<Entry> patterns_;
};

}  // namespace windlass::detail
