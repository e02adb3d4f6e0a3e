#include "logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <string>
#include <string_view>

#include "escape.hpp"
#include "windlass/log.hpp"

namespace windlass::server {

namespace {

std::shared_ptr<spdlog::logger> g_server;
std::shared_ptr<spdlog::logger> g_access;

std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

// "2024-05-01T12:00:00.123Z" (UTC, for JSON: machines compare it across
// hosts) or "2024-05-01T14:00:00.123" (local time, for people, as the
// library's default pattern). The part up to the second is cached per
// thread: most lines of a busy server share it with the line before.
void append_time(std::string& out, spdlog::log_clock::time_point tp, bool utc) {
  using namespace std::chrono;
  auto since_epoch = tp.time_since_epoch();
  auto secs = duration_cast<seconds>(since_epoch);
  auto millis = duration_cast<milliseconds>(since_epoch - secs).count();
  thread_local std::time_t cached_sec = -1;
  thread_local bool cached_utc = false;
  thread_local char cached[32];
  std::time_t t = static_cast<std::time_t>(secs.count());
  if (t != cached_sec || utc != cached_utc) {
    std::tm tm{};
    if (utc)
      ::gmtime_r(&t, &tm);
    else
      ::localtime_r(&t, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_sec = t;
    cached_utc = utc;
  }
  out += cached;
  char ms[5] = {'.', static_cast<char>('0' + millis / 100), static_cast<char>('0' + millis / 10 % 10),
                static_cast<char>('0' + millis % 10), '\0'};
  out += ms;
  if (utc) out += 'Z';
}

// One formatter for both loggers and both formats, so that every line of
// the process has the same shape. `fields` means the payload is already a
// list of JSON members (the access log); otherwise it is a message to
// escape. Redaction runs on every payload, whoever wrote it.
class LineFormatter final : public spdlog::formatter {
 public:
  LineFormatter(LogFormat format, bool fields, std::shared_ptr<const std::vector<std::string>> redact)
      : format_(format), fields_(fields), redact_(std::move(redact)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string payload(msg.payload.data(), msg.payload.size());
    if (!redact_->empty()) redact_query_values(payload, *redact_);
    std::string line;
    line.reserve(payload.size() + 96);
    if (format_ == LogFormat::json) {
      line += "{\"time\":\"";
      append_time(line, msg.time, true);
      line += "\",\"level\":\"";
      line += level_name(msg.level);
      line += "\",\"logger\":\"";
      append_json_escaped(line, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
      if (fields_) {
        line += "\",";
        line += payload;
      } else {
        line += "\",\"msg\":\"";
        append_json_escaped(line, payload);
        line += '"';
      }
      line += "}\n";
    } else {
      append_time(line, msg.time, false);
      line += ' ';
      msg.color_range_start = line.size();
      line += level_name(msg.level);
      msg.color_range_end = line.size();
      line += ' ';
      append_one_line(line, payload);
      line += '\n';
    }
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_, fields_, redact_);
  }

 private:
  LogFormat format_;
  bool fields_;
  std::shared_ptr<const std::vector<std::string>> redact_;
};

// A formatter belongs to a sink, not to a logger, so each logger gets its
// own sink. Both write to stderr under spdlog's one console mutex, so
// their lines never interleave.
spdlog::sink_ptr make_sink(LogFormat format) {
  // JSON never gets colour escapes; text gets them only on a terminal.
  if (format == LogFormat::json) return std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
}

spdlog::level::level_enum spdlog_level(windlass::LogLevel l) {
  switch (l) {
    case windlass::LogLevel::trace: return spdlog::level::trace;
    case windlass::LogLevel::debug: return spdlog::level::debug;
    case windlass::LogLevel::info: return spdlog::level::info;
    case windlass::LogLevel::warn: return spdlog::level::warn;
    case windlass::LogLevel::error: return spdlog::level::err;
    case windlass::LogLevel::off: break;
  }
  return spdlog::level::off;
}

}  // namespace

void configure_logging(const LogConfig& log) {
  // The config was validated: the level is one of the names the library takes.
  windlass::set_log_level(log.level);
  auto redact = std::make_shared<const std::vector<std::string>>(log.redact_query_params);

  // The server's own lines and the library's share one logger, one format
  // and one sink: the library hands its lines over through its public
  // log handler.
  g_server = std::make_shared<spdlog::logger>("windlass", make_sink(log.format));
  g_server->set_formatter(std::make_unique<LineFormatter>(log.format, false, redact));
  g_server->set_level(spdlog_level(windlass::log_level()));
  windlass::set_log_handler([server = g_server](windlass::LogLevel level, std::string_view message) {
    server->log(spdlog_level(level), "{}", message);
  });

  if (log.access) {
    // Its own level: the access log is switched by log.access, not by
    // log.level, so "warn" keeps the access lines and drops the chatter.
    g_access = std::make_shared<spdlog::logger>("access", make_sink(log.format));
    g_access->set_level(spdlog::level::info);
    g_access->set_formatter(std::make_unique<LineFormatter>(log.format, true, redact));
  } else {
    g_access.reset();
  }
}

std::shared_ptr<spdlog::logger> access_logger() {
  return g_access;
}

spdlog::logger& server_logger() {
  return *g_server;
}

}  // namespace windlass::server
