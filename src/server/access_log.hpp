// The access log: one line per HTTP answer, WebSocket handshake, refusal
// and WebSocket close, from ServerOptions::on_access.
//
// What is logged: time, remote address and port, X-Forwarded-For as sent,
// method, path (never the query string: the library leaves it out, since
// queries carry tokens), status, duration, the refusal or close reason,
// close code and cause, payload bytes each way and the connection id.
// What is not: headers other than X-Forwarded-For, cookies, query strings,
// message contents.
#pragma once

#include <functional>

#include "config.hpp"
#include "windlass/stats.hpp"

namespace windlass::server {

// Renders one event as the payload of an access-log line: logfmt fields
// for LogFormat::text, JSON object members (without braces) for json.
std::string format_access(const AccessEvent& e, LogFormat format);

// The ServerOptions::on_access hook writing to the access logger; empty
// when the access log is off. Thread-safe: every loop calls it.
std::function<void(const AccessEvent&)> make_access_hook(LogFormat format);

}  // namespace windlass::server
