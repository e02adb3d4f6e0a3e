#include "notify.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "logging.hpp"

namespace windlass::server {

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  uint64_t usec = 0;
  // > 0 when WATCHDOG_USEC is set for this process (WATCHDOG_PID, if set, is ours).
  if (::sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_ = std::chrono::microseconds(usec);
}

void Notifier::send(const std::string& state) const {
  if (!enabled_) return;
  // 0 keeps NOTIFY_SOCKET in the environment: the watchdog sends many.
  int r = ::sd_notify(0, state.c_str());
  if (r < 0) server_logger().warn("sd_notify: {}", std::strerror(-r));
}

// STATUS= is one line: a newline would start another assignment.
static std::string status_line(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n') c = ' ';
  }
  return "STATUS=" + out;
}

void Notifier::ready(std::string_view status) const {
  send("READY=1\n" + status_line(status));
}

void Notifier::status(std::string_view status) const {
  send(status_line(status));
}

void Notifier::stopping(std::string_view status, std::chrono::milliseconds expected) const {
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(expected).count();
  send("STOPPING=1\n" + status_line(status) + "\nEXTEND_TIMEOUT_USEC=" + std::to_string(usec));
}

void Notifier::start_timers(App& app, std::chrono::milliseconds status_every) const {
  if (!enabled_) return;
  Loop& loop = app.loop();
  if (watchdog_.count() > 0) {
    // Half the interval, as sd_watchdog_enabled(3) advises: one late turn
    // must not get the service killed.
    auto every = std::max(std::chrono::milliseconds(1),
                          std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_ / 2));
    loop.add_timer(
        every, [this] { send("WATCHDOG=1"); }, every);
    server_logger().info("systemd watchdog: pinging every {} ms", every.count());
  }
  loop.add_timer(
      status_every,
      [this, &app] {
        Stats s = app.stats();
        uint64_t websockets = 0;
        for (const auto& [cause, n] : s.closes_by_cause) websockets += n;
        websockets = s.websockets_opened >= websockets ? s.websockets_opened - websockets : 0;
        status((s.draining ? "draining: " : "serving: ") + std::to_string(s.connections_open) +
               " connections (" + std::to_string(websockets) + " WebSocket), " +
               std::to_string(s.connections_accepted) + " accepted");
      },
      status_every);
}

}  // namespace windlass::server
