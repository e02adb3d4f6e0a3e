// Command-line options of windlass-load, shared by every mode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace windlass::load {

struct Options {
  std::string mode;  // echo, fanout, handshake, idle, pusher, pusher-idle
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // --spread: the WebSocket clients connect round-robin to these ports of
  // --host (client i to spread[i % n]); the pusher mode's API calls still
  // go to --port. Empty: every client to --port.
  std::vector<uint16_t> spread;
  std::string path = "/";
  bool path_given = false;  // pusher modes: otherwise /app/{key}?protocol=7&...
  size_t connections = 100;
  size_t size = 20;  // payload bytes per message (pusher: of each event's data string, default 100)
  bool binary = false;
  size_t pipeline = 1;  // messages in flight per connection
  size_t burst = 1;     // fanout: messages per publish burst
  // fanout: messages per second, sent whether or not the last arrived;
  // pusher: publishes per second, in bursts of --burst. 0: closed loop / unthrottled.
  double rate = 0;
  double duration_s = 10;
  double warmup_s = 2;
  bool counted = false;         // echo: --count given, so not timed
  uint64_t count = 0;           // echo: exactly this many round trips per connection
  size_t max_connecting = 256;  // connections in connect/handshake at once
  int server_pid = 0;           // read this process's CPU time and memory, if set (the first of --server-pid)
  std::vector<int> server_pids;  // --server-pid's list: CPU time summed over them (a cluster's nodes, Redis)
  bool count_syscalls = false;  // and count the (first) server's system calls over the window
  // pusher, pusher-idle: the app, the public channel every subscriber
  // joins, the event name, and how the publisher uses the HTTP API.
  std::string app_id = "app-id";
  std::string app_key = "app-key";
  std::string app_secret = "app-secret";
  std::string channel = "bench";
  std::string event = "bench-event";
  size_t window = 64;          // unthrottled: publishes sent but not yet received by every subscriber
  size_t api_connections = 1;  // HTTP connections to the API, each with one request in flight
  bool api_close = false;      // ask for Connection: close on every call (default: keep-alive)
  bool json = false;
  bool quiet = false;  // no progress lines on stderr
};

// Parses argv into `out`. On a bad or missing argument writes the reason
// and the usage to stderr and returns false; "--help" prints the usage to
// stdout and also returns false with `help` set.
bool parse_options(int argc, char** argv, Options& out, bool& help);

}  // namespace windlass::load
