// Command-line handling shared by the examples, so each example file is
// only its component. Not part of the library.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "windlass/windlass.hpp"

namespace example {

struct Args {
  windlass::ServerOptions server;
  windlass::WsOptions ws;
  std::string public_dir;
};

inline void usage(const char* prog, const char* what) {
  std::fprintf(stderr,
               "%s: %s\n"
               "usage: %s [--host ADDR] [--port N] [--threads N] [--public DIR] [--max-message-size BYTES]\n"
               "          [--max-connections N] [--max-send-queue BYTES] [--ping-interval-ms MS]\n"
               "          [--pong-timeout-ms MS] [--header-timeout-ms MS] [--sweep-ms MS]\n"
               "          [--tls-port N --tls-cert PEM --tls-key PEM] [--compression off|shared|per-connection]\n"
               "          [--log-level trace|debug|info|warn|error|off] [--io auto|epoll|io_uring]\n"
               "--io defaults to $WINDLASS_IO, else auto (io_uring where the kernel allows it)\n",
               prog, what, prog);
  std::exit(2);
}

inline Args parse_args(int argc, char** argv, Args defaults) {
  Args a = std::move(defaults);
  // The environment gives --io's default, so a test suite (or an operator)
  // picks the backend for every server it starts without new flags.
  if (const char* io = std::getenv("WINDLASS_IO"); io != nullptr && *io != '\0') {
    auto backend = windlass::parse_io_backend(io);
    if (!backend) usage(argv[0], "WINDLASS_IO takes auto, epoll or io_uring");
    a.server.io = *backend;
  }
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage(argv[0], "help");
    if (i + 1 >= argc) usage(argv[0], ("missing value for " + flag).c_str());
    std::string v = argv[++i];
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    bool numeric = end != v.c_str() && *end == '\0';
    auto num = [&]() {
      if (!numeric) usage(argv[0], (flag + " takes a number").c_str());
      return n;
    };
    if (flag == "--host") a.server.host = v;
    else if (flag == "--port") a.server.port = static_cast<uint16_t>(num());
    else if (flag == "--public") a.public_dir = v;
    else if (flag == "--threads") a.server.threads = static_cast<unsigned>(num());
    else if (flag == "--compression") {
      using Mode = windlass::CompressionOptions::Mode;
      if (v == "off") a.ws.compression.mode = Mode::off;
      else if (v == "shared") a.ws.compression.mode = Mode::shared;
      else if (v == "per-connection") a.ws.compression.mode = Mode::per_connection;
      else usage(argv[0], "--compression takes off, shared or per-connection");
    }
    else if (flag == "--io") {
      auto backend = windlass::parse_io_backend(v);
      if (!backend) usage(argv[0], "--io takes auto, epoll or io_uring");
      a.server.io = *backend;
    }
    else if (flag == "--tls-port") a.server.tls_port = static_cast<uint16_t>(num());
    else if (flag == "--tls-cert") a.server.tls_certificate_file = v;
    else if (flag == "--tls-key") a.server.tls_private_key_file = v;
    else if (flag == "--max-message-size") a.ws.max_message_size = num();
    else if (flag == "--max-connections") a.server.max_connections = num();
    else if (flag == "--max-send-queue") a.server.max_send_queue = num();
    else if (flag == "--ping-interval-ms") a.ws.ping_interval = std::chrono::milliseconds(num());
    else if (flag == "--pong-timeout-ms") a.ws.pong_timeout = std::chrono::milliseconds(num());
    else if (flag == "--header-timeout-ms") a.server.header_timeout = std::chrono::milliseconds(num());
    else if (flag == "--sweep-ms") a.server.sweep_interval = std::chrono::milliseconds(num());
    else if (flag == "--log-level") {
      if (!windlass::set_log_level(v)) usage(argv[0], ("unknown log level " + v).c_str());
    } else {
      usage(argv[0], ("unknown flag " + flag).c_str());
    }
  }
  if (a.server.io == windlass::IoBackend::io_uring && !windlass::Loop::io_uring_unavailable().empty()) {
    std::fprintf(stderr, "error: io_uring: %s\n", windlass::Loop::io_uring_unavailable().c_str());
    std::exit(1);
  }
  return a;
}

// Binds, prints "listening on HOST:PORT" (tests and scripts wait for that
// line), and runs until SIGINT/SIGTERM.
inline int serve(windlass::App& app, const Args& a) {
  try {
    app.listen();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  // Tests and scripts wait for these lines: the plain listener first.
  std::printf("listening on %s:%u\n", a.server.host.c_str(), app.port());
  if (app.tls_port() != 0) std::printf("listening on %s:%u (tls)\n", a.server.host.c_str(), app.tls_port());
  std::fflush(stdout);
  app.run();
  return 0;
}

}  // namespace example
