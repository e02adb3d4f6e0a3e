// systemd's readiness protocol (sd_notify(3)): READY=1 once listening,
// WATCHDOG=1 on a timer, STATUS= now and then, STOPPING=1 on shutdown.
// Every call is a no-op unless NOTIFY_SOCKET is set (Type=notify units),
// so the same binary runs unchanged under Supervisor, docker or a shell.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "windlass/app.hpp"

namespace windlass::server {

class Notifier {
 public:
  Notifier();

  bool enabled() const noexcept { return enabled_; }

  // Sends "READY=1" with a status line.
  void ready(std::string_view status) const;
  // Sends "STATUS=...".
  void status(std::string_view status) const;
  // Sends "STOPPING=1", and asks systemd to wait `expected` for the exit
  // (EXTEND_TIMEOUT_USEC) so a long drain_delay is not cut short.
  void stopping(std::string_view status, std::chrono::milliseconds expected) const;

  // Loop thread of app.loop() (or before run()): starts the watchdog
  // pings at half of WATCHDOG_USEC, and a STATUS line every
  // `status_every`, both on the first loop. A loop that hangs stops the
  // pings, and systemd restarts the service.
  void start_timers(App& app, std::chrono::milliseconds status_every) const;

 private:
  void send(const std::string& state) const;

  bool enabled_ = false;
  std::chrono::microseconds watchdog_{0};  // 0: no watchdog
};

}  // namespace windlass::server
