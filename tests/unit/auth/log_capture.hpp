// Collects the library's log lines during one test (windlass::set_log_handler).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/log.hpp"

namespace windlass::test {

struct LogCapture {
  LogCapture() {
    set_log_handler([this](LogLevel, std::string_view line) {
      std::lock_guard lock(m);
      lines.emplace_back(line);
    });
  }
  ~LogCapture() { set_log_handler({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // The lines that contain `needle`, in order.
  std::vector<std::string> matching(std::string_view needle) {
    std::lock_guard lock(m);
    std::vector<std::string> out;
    for (auto& l : lines) {
      if (l.find(needle) != std::string::npos) out.push_back(l);
    }
    return out;
  }

  std::mutex m;
  std::vector<std::string> lines;
};

}  // namespace windlass::test
