// Worker: one loop and everything it owns — the one home of per-loop
// state. Its layers (IoServer, HttpServer, WsServer) are built here around
// one LoopResources, and the loop's topic table is here too, so nothing a
// loop touches is owned anywhere else (the routes, the components and the
// brokers are shared by every worker and outlive them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

#include "http/http_server.hpp"
#include "io/io_server.hpp"
#include "io/loop_resources.hpp"
#include "windlass/app.hpp"
#include "windlass/loop.hpp"
#include "ws/pubsub.hpp"
#include "ws/ws_server.hpp"

namespace windlass::detail {

struct Worker {
  Loop loop;
  LoopResources resources;
  TopicTable topics;
  WsServer ws;
  HttpServer http;
  IoServer io;
  bool shutting_down = false;

  Worker(size_t index, const ServerOptions& o, const Routes& routes, std::atomic<size_t>& process_connections,
         WsShared shared, const IpSet* trusted_proxies);

  // Loop thread: stop accepting, close every client politely, and stop the
  // loop when the last one is gone or at the deadline.
  void begin_shutdown(std::chrono::milliseconds timeout);
};

}  // namespace windlass::detail
