// A windlass server with one AuthProxy route, for
// tests/integration/auth_proxy_test.py: "/ws" asks --auth-url whether a
// handshake may proceed, and the component greets each connection with
// the user id the web application answered ("hello ada"), so the test sees
// that the id reached the connection's state. Prints "listening on
// HOST:PORT" once it serves; SIGTERM stops it. A test program, not an
// example: its flags are the test's.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "windlass/auth.hpp"
#include "windlass/windlass.hpp"

namespace {

struct User {
  std::string id;
};

class Greeter final : public windlass::Component<User> {
 public:
  void on_open(windlass::Connection& conn) override { conn.send("hello " + state(conn).id); }
  void on_message(windlass::Connection& conn, const windlass::Message& msg) override { conn.send(msg); }
};

[[noreturn]] void usage(const char* prog, const std::string& what) {
  std::fprintf(stderr,
               "%s: %s\nusage: %s --auth-url URL [--host ADDR] [--port N] [--threads N] [--timeout-ms MS]\n",
               prog, what.c_str(), prog);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  windlass::ServerOptions so;
  so.port = 0;
  windlass::AuthProxyOptions auth;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(argv[0], "missing value for " + flag);
    const std::string v = argv[++i];
    if (flag == "--host") {
      so.host = v;
    } else if (flag == "--port") {
      so.port = static_cast<uint16_t>(std::stoul(v));
    } else if (flag == "--threads") {
      so.threads = static_cast<unsigned>(std::stoul(v));
    } else if (flag == "--auth-url") {
      auth.url = v;
    } else if (flag == "--timeout-ms") {
      auth.timeout = std::chrono::milliseconds(std::stol(v));
    } else {
      usage(argv[0], "unknown flag " + flag);
    }
  }
  if (auth.url.empty()) usage(argv[0], "--auth-url is required");
  try {
    windlass::App app(so);
    auto proxy =
        std::make_shared<windlass::AuthProxy>(app, std::make_shared<Greeter>(), auth,
                                              [](windlass::Upgrade& up, const windlass::AuthProxyAnswer& a) {
                                                up.connection().state<User>().id = a.user_id;
                                              });
    app.route("/ws", proxy);
    app.listen();
    std::printf("listening on %s:%u\n", so.host.c_str(), app.port());
    std::fflush(stdout);
    app.run();
    const windlass::AuthProxyStats s = proxy->stats();
    std::fprintf(stderr, "auth proxy: %llu allowed, %llu refused, %llu requests, %llu cache hits\n",
                 static_cast<unsigned long long>(s.allowed),
                 static_cast<unsigned long long>(s.refused_total()),
                 static_cast<unsigned long long>(s.requests), static_cast<unsigned long long>(s.cache_hits));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
