#include "log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "windlass/app.hpp"

namespace windlass {

namespace detail {
spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = spdlog::stderr_color_mt("windlass");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *instance;
}
}  // namespace detail

bool set_log_level(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  if (l == spdlog::level::off && level != "off") return false;
  detail::logger().set_level(l);
  return true;
}

}  // namespace windlass
