// The library's logger: one spdlog logger named "windlass", to stderr by
// default. Each refusal or failure is one line that says why.
#pragma once

#include <spdlog/spdlog.h>

#include <utility>

namespace windlass::detail {

spdlog::logger& logger();

template <class... A>
void log_debug(spdlog::format_string_t<A...> f, A&&... a) {
  logger().debug(f, std::forward<A>(a)...);
}
template <class... A>
void log_info(spdlog::format_string_t<A...> f, A&&... a) {
  logger().info(f, std::forward<A>(a)...);
}
template <class... A>
void log_warn(spdlog::format_string_t<A...> f, A&&... a) {
  logger().warn(f, std::forward<A>(a)...);
}
template <class... A>
void log_error(spdlog::format_string_t<A...> f, A&&... a) {
  logger().error(f, std::forward<A>(a)...);
}

}  // namespace windlass::detail
