// What the server has done so far, summed over its loops: the numbers
// behind /metrics. App::stats() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "windlass/connection.hpp"

namespace windlass {

struct LoopStats {
  uint64_t connections_open = 0;
  int64_t lag_ms = 0;  // how late the loop last ran a due timer
};

struct Stats {
  uint64_t connections_open = 0;        // TCP connections (HTTP and WebSocket)
  uint64_t connections_accepted = 0;    // since start
  uint64_t websockets_opened = 0;       // successful handshakes since start
  uint64_t http_requests = 0;           // request heads parsed (including upgrades)
  std::map<int, uint64_t> refused_by_status;  // answers the server wrote itself (400, 404, 503, ...)
  uint64_t messages_in = 0, bytes_in = 0;     // WebSocket messages received (payload bytes)
  uint64_t messages_out = 0, bytes_out = 0;   // WebSocket messages queued (frame bytes)
  std::map<CloseCause, uint64_t> closes_by_cause;
  std::map<uint16_t, uint64_t> close_codes;   // codes reported to on_close; 0: other
  uint64_t send_queue_bytes = 0;        // bytes queued and not yet taken by the kernel
  uint64_t rss_bytes = 0;               // resident memory of the process
  bool draining = false;                // a graceful shutdown has begun (/readyz fails)
  std::vector<LoopStats> loops;
};

// One line of the access log: a handshake, a plain HTTP answer, a refusal
// or the end of a WebSocket connection. Views are valid during the call.
struct AccessEvent {
  enum class Kind : uint8_t { http, upgrade, refused, close };
  Kind kind = Kind::http;
  uint64_t connection_id = 0;     // WebSocket connections only
  std::string_view remote;        // peer address
  std::string_view client;        // the client's address when a trusted proxy named one, else empty
  uint16_t remote_port = 0;
  std::string_view forwarded_for; // X-Forwarded-For as sent (empty if none)
  std::string_view method;
  std::string_view path;          // without the query string: queries can carry tokens
  int status = 0;                 // HTTP status (101 for an upgrade); 0 for close
  std::string_view reason;        // why it was refused, or the close reason
  std::chrono::microseconds duration{0};  // request: since its first byte; close: connection lifetime
  uint16_t close_code = 0;
  CloseCause cause = CloseCause::transport_closed;
  uint64_t bytes_in = 0, bytes_out = 0;   // close: the connection's payload bytes
};

}  // namespace windlass
