// Who may connect, and how fast a connection may talk: the options behind
// Ratchet's OriginCheck and IpBlackList decorators, plus what a server
// behind a proxy needs (the real client address, per-address connection
// limits, per-connection rate limits).
//
// These are plain configuration. The server validates them when it starts
// and refuses to start on the first bad entry, naming it, e.g.
//   access.blocklist[3] "10.0.0.0/33": prefix length 33 out of range for IPv4 (0-32)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace windlass {

// ServerOptions::access. Everything empty or zero (the default) turns every
// check off and costs nothing per request.
struct AccessOptions {
  // Origins a browser may open a WebSocket from, as RFC 6454 serialized
  // origins: "https://example.com", "http://localhost:8080". Scheme and host
  // compare case-insensitively; a default port (http 80, https 443) may be
  // written or not. "https://*.example.com" allows every subdomain at any
  // depth (a.example.com, a.b.example.com) but not example.com itself.
  // "null" allows the opaque origin of sandboxed iframes and file:// pages,
  // which is denied otherwise. Empty: no origin check. Refused: 403.
  //
  // Browsers always send Origin on a WebSocket handshake (RFC 6455 §4.1,
  // §10.2), so this stops other sites' pages from using a visitor's cookies
  // to open a connection (cross-site WebSocket hijacking). It does not stop
  // non-browser clients, which can send any Origin they like.
  std::vector<std::string> allowed_origins;

  // A handshake without Origin comes from a non-browser client (a script, a
  // mobile app, a server). Allowed by default; false refuses it with 403.
  // Only consulted when allowed_origins is not empty.
  bool allow_missing_origin = true;

  // Client addresses refused with 403 on every request (plain HTTP and
  // WebSocket): "203.0.113.7", "10.0.0.0/8", "2001:db8::/32". An IPv4 rule
  // also matches the same address seen as IPv4-mapped IPv6 (::ffff:a.b.c.d);
  // an IPv6 rule such as "::/0" matches native IPv6 clients only.
  std::vector<std::string> blocklist;

  // Proxies (same syntax as blocklist) whose X-Forwarded-For and X-Real-IP
  // headers are believed. The client address is then the right-most
  // X-Forwarded-For entry that is not itself a trusted proxy (nginx's
  // real_ip_recursive), or X-Real-IP when there is no X-Forwarded-For.
  // Headers from any other peer are ignored: anyone can write them.
  // Empty: the client address is always the TCP peer.
  std::vector<std::string> trusted_proxies;

  // WebSocket connections one client address may hold at once, counted over
  // the whole process (every loop); 0: no limit. Over it: 429.
  size_t max_connections_per_ip = 0;

  // IPv6 clients are counted per network of this many leading bits. An end
  // site is given at least a /64 (RFC 6177), so counting per /128 would let
  // one client open as many connections as it has addresses to spare.
  // 128 counts every address on its own. Range 1-128.
  unsigned ipv6_prefix_per_ip = 64;
};

// WsOptions::rate_limit: limits on what one WebSocket connection may send
// us. A connection that goes over is closed with 1008 (policy violation).
// A zero rate turns that limit off; everything zero (the default) turns
// rate limiting off.
//
// Each limit is a token bucket: it starts full, refills at the rate, and
// holds at most the burst. Counted: data messages and pings (a ping costs a
// pong), and their payload bytes as they arrive.
struct RateLimit {
  uint32_t messages_per_second = 0;
  uint32_t burst_messages = 0;  // 0: messages_per_second (one second's worth)
  uint64_t bytes_per_second = 0;
  // 0: bytes_per_second. Must be at least max_message_size, or a message of
  // that size could never pass; at most 18,446,744,073,709 (2^64 / 10^6).
  uint64_t burst_bytes = 0;
};

}  // namespace windlass
