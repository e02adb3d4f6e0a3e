// Sizes and durations as an operator writes them in the config file:
// "16MiB", "64KiB", "30s", "1m30s", "500ms". Pure functions, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace windlass::server {

// "<digits>[ ]<unit>" with unit B, KB, MB, GB, TB (powers of 1000) or KiB,
// MiB, GiB, TiB (powers of 1024); bare digits are bytes. Units are
// case-sensitive: "mb" is refused rather than guessed. nullopt when
// malformed or when the value does not fit in 64 bits.
std::optional<uint64_t> parse_size(std::string_view text);

// One or more "<digits><unit>" with unit ms, s, m or h ("1m30s"). A unit is
// required: "30" could mean seconds or milliseconds, so it is refused.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest exact spelling: 16777216 -> "16MiB", 1500 -> "1500B".
std::string format_size(uint64_t bytes);
// 30000 -> "30s", 90000 -> "1m30s", 1500 -> "1500ms", 0 -> "0s".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace windlass::server
