#include "units.hpp"

#include <limits>
#include <utility>

namespace windlass::server {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads the digits at the front of `s`; nullopt on none or on overflow.
std::optional<uint64_t> take_number(std::string_view& s) {
  if (s.empty() || !is_digit(s.front())) return std::nullopt;
  uint64_t v = 0;
  while (!s.empty() && is_digit(s.front())) {
    uint64_t d = static_cast<uint64_t>(s.front() - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
    s.remove_prefix(1);
  }
  return v;
}

std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b) return std::nullopt;
  return a * b;
}

struct Unit {
  std::string_view name;
  uint64_t factor;
};

// A unit must be the whole rest of the string, so their order does not matter.
constexpr Unit kSizeUnits[] = {
    {"B", 1},
    {"KB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"TB", 1000ull * 1000 * 1000 * 1000},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
};

}  // namespace

std::optional<uint64_t> parse_size(std::string_view s) {
  auto n = take_number(s);
  if (!n) return std::nullopt;
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.empty()) return n;
  for (const Unit& u : kSizeUnits) {
    if (s == u.name) return checked_mul(*n, u.factor);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t total = 0;
  while (!s.empty()) {
    auto n = take_number(s);
    if (!n) return std::nullopt;
    uint64_t factor = 0;
    // "ms" before "m": the unit is the longest that matches here.
    if (s.starts_with("ms")) {
      factor = 1, s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      factor = 1000, s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      factor = 60'000, s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      factor = 3'600'000, s.remove_prefix(1);
    } else {
      return std::nullopt;  // a number without a unit, or an unknown unit
    }
    auto part = checked_mul(*n, factor);
    if (!part || total > std::numeric_limits<int64_t>::max() - *part) return std::nullopt;
    total += *part;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

std::string format_size(uint64_t bytes) {
  // Binary units read best for buffer sizes; the largest exact one wins.
  constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (auto [factor, name] : kUnits) {
    if (bytes != 0 && bytes % factor == 0) return std::to_string(bytes / factor) + name;
  }
  return std::to_string(bytes) + "B";
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = static_cast<uint64_t>(d.count() < 0 ? 0 : d.count());
  if (ms == 0) return "0s";
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  uint64_t s = ms / 1000;
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h", s %= 3600;
  if (s >= 60) out += std::to_string(s / 60) + "m", s %= 60;
  if (s != 0) out += std::to_string(s) + "s";
  return out;
}

}  // namespace windlass::server
