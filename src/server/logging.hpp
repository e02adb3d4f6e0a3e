// The server's logs: the library's "windlass" logger and the access log,
// both to stderr (journald, Supervisor and docker collect it there), as
// text or as one JSON object per line.
#pragma once

#include <spdlog/logger.h>

#include <memory>

#include "config.hpp"

namespace windlass::server {

// Points the library's logger at our sink and formatter and sets its
// level; creates the access logger (info level, same sink) when
// log.access is on. Call once, before the App starts its threads.
void configure_logging(const LogConfig& log);

// The access logger, or nullptr when the access log is off.
std::shared_ptr<spdlog::logger> access_logger();

// The library's logger, for the server's own lines.
spdlog::logger& server_logger();

}  // namespace windlass::server
