// The server's logs: the library's "windlass" logger and the access log,
// both to stderr (journald, Supervisor and docker collect it there), as
// text or as one JSON object per line.
#pragma once

#include <spdlog/logger.h>

#include <memory>

#include "config.hpp"

namespace windlass::server {

// Makes the server's logger (our sink and formatter, the configured
// level), hands the library's lines to it through windlass::
// set_log_handler(), and creates the access logger (info level, same sink)
// when log.access is on. Call once, before the App starts its threads.
void configure_logging(const LogConfig& log);

// The access logger, or nullptr when the access log is off.
std::shared_ptr<spdlog::logger> access_logger();

// The server's logger (the library's lines go to it too).
spdlog::logger& server_logger();

}  // namespace windlass::server
