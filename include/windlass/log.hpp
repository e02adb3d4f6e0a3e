// The library's log: one line per refusal, failure and lifecycle event,
// each saying why. By default the lines go to stderr with a time and a
// level; an application that has its own log (JSON lines, a file, syslog)
// takes them with set_log_handler().
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace windlass {

enum class LogLevel : uint8_t { trace, debug, info, warn, error, off };

// "trace", "debug", "info", "warn", "error", "off". False for an unknown name.
bool set_log_level(std::string_view level);
void set_log_level(LogLevel level);
LogLevel log_level() noexcept;
// The name set_log_level() takes ("warn").
std::string_view to_string(LogLevel level) noexcept;

// Receives each line at or above the log level: its level and its text,
// without a time or level prefix. Called on the thread that logged it
// (any loop's), so it must be thread-safe. An empty handler sends the
// lines to stderr again. Set it before any App runs: the library does not
// swap its output under running loops.
using LogHandler = std::function<void(LogLevel level, std::string_view message)>;
void set_log_handler(LogHandler handler);

// Logs one line through the library's log (its level, its handler), for
// applications built on it: their lines then go where the library's go,
// in the same format. Any thread.
void log(LogLevel level, std::string_view message);

}  // namespace windlass
