// Options of one WebSocket route (App::route): message limits, keepalive,
// compression, rate limits, backpressure and the upgrade hook's deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "windlass/access.hpp"

namespace windlass {

// permessage-deflate (RFC 7692) for a route.
struct CompressionOptions {
  enum class Mode : uint8_t {
    off,             // never negotiated
    shared,          // one compressor per loop for every connection (server_no_context_takeover):
                     // little memory, and a broadcast is compressed once per loop
    per_connection,  // each connection keeps its compression window: better ratios,
                     // about 256 KiB more memory per connection at the default settings
  };
  Mode mode = Mode::off;
  size_t min_size = 64;  // messages shorter than this are sent uncompressed
  int level = 6;         // zlib level 1..9
  int mem_level = 8;     // zlib memLevel 1..9
  int server_max_window_bits = 15;  // 9..15 (8 is negotiated as 9: zlib's raw deflate minimum)
  int client_max_window_bits = 15;  // asked of clients that offer client_max_window_bits
  bool client_no_context_takeover = false;  // ask clients to reset per message: we then inflate
                                            // with no window kept between messages
};

struct WsOptions {
  // Largest message accepted (sum of its frames' payloads); larger -> close 1009.
  size_t max_message_size = 1u << 20;
  // Send a ping after this long without hearing from the client; 0 disables keepalive.
  std::chrono::milliseconds ping_interval{30'000};
  // Close a connection whose ping went unanswered this long (CloseCause::keepalive_timeout).
  std::chrono::milliseconds pong_timeout{30'000};
  // How long to wait for the client's close frame after sending ours (RFC 6455 §7.1.1).
  std::chrono::milliseconds close_timeout{5'000};
  CompressionOptions compression;
  // Per connection: messages and bytes per second with a burst; a client
  // over it is closed with 1008 (CloseCause::rate_limited). Zero: no limit.
  RateLimit rate_limit;
  // Bytes queued for a connection above which send() answers
  // SendStatus::backpressure; on_drain follows when the queue falls back
  // under it. (ServerOptions::max_send_queue, far above, drops the client.)
  size_t send_watermark = 64 * 1024;
  // How long a deferred upgrade (Upgrade::defer) may wait for its answer,
  // and the status the client gets when it does not come: 504 (a gateway
  // timeout: the answer was to come from elsewhere) or 503.
  std::chrono::milliseconds upgrade_timeout{10'000};
  int upgrade_timeout_status = 504;
  // What a graceful shutdown closes this route's connections with: 1001
  // (going away) by default; a protocol on top may have its own ("reconnect
  // now" is 4200 in Pusher's).
  uint16_t shutdown_close_code = 1001;
  const char* shutdown_close_reason = "server shutting down";
};

}  // namespace windlass
