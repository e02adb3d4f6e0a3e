#include "log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

#include "windlass/log.hpp"

namespace windlass {

namespace detail {

namespace {

LogLevel from_spdlog(spdlog::level::level_enum l) noexcept {
  switch (l) {
    case spdlog::level::trace: return LogLevel::trace;
    case spdlog::level::debug: return LogLevel::debug;
    case spdlog::level::info: return LogLevel::info;
    case spdlog::level::warn: return LogLevel::warn;
    case spdlog::level::err:
    case spdlog::level::critical: return LogLevel::error;
    default: return LogLevel::off;
  }
}

spdlog::level::level_enum to_spdlog(LogLevel l) noexcept {
  switch (l) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::off: break;
  }
  return spdlog::level::off;
}

// Hands each line to the application's handler, without a pattern: the
// handler adds the time and level in its own format.
class HandlerSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit HandlerSink(LogHandler handler) : handler_(std::move(handler)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    handler_(from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  LogHandler handler_;
};

spdlog::sink_ptr stderr_sink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  return sink;
}

}  // namespace

spdlog::logger& logger() {
  // Not registered with spdlog by name: an application's own spdlog setup
  // (set_level on every logger, drop_all) does not reach into ours.
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = std::make_shared<spdlog::logger>("windlass", stderr_sink());
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *instance;
}

}  // namespace detail

bool set_log_level(std::string_view level) {
  for (LogLevel l : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    if (to_string(l) == level) {
      set_log_level(l);
      return true;
    }
  }
  return false;
}

void set_log_level(LogLevel level) {
  detail::logger().set_level(detail::to_spdlog(level));
}

LogLevel log_level() noexcept {
  return detail::from_spdlog(detail::logger().level());
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "off";
}

void log(LogLevel level, std::string_view message) {
  detail::logger().log(detail::to_spdlog(level), "{}", message);
}

void set_log_handler(LogHandler handler) {
  auto& l = detail::logger();
  l.sinks().clear();
  if (handler) {
    l.sinks().push_back(std::make_shared<detail::HandlerSink>(std::move(handler)));
  } else {
    l.sinks().push_back(detail::stderr_sink());
  }
}

}  // namespace windlass
