// The whole stack in one process: an App on its own thread, driven by a raw
// test client that can misbehave on purpose.
#include "windlass/app.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "unit/ws/test_client.hpp"

using namespace std::chrono_literals;
using windlass::test::Frame;
using windlass::test::TestClient;
using Op = windlass::proto::Opcode;

namespace {

// Records what the component saw; the test thread waits on it.
struct Events {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> messages;
  std::vector<windlass::CloseInfo> closes;
  std::vector<std::string> errors;
  int opens = 0;

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 3000ms) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, timeout, [&] { return pred(*this); });
  }
};

class Recorder : public windlass::MessageComponent {
 public:
  explicit Recorder(Events& e) : ev(e) {}
  void on_upgrade(windlass::Upgrade& up) override {
    last_client = std::string(up.request().client_address);
    up.accept();
  }
  void on_open(windlass::Connection& c) override {
    last = c;
    std::lock_guard lock(ev.m);
    ++ev.opens;
    ev.cv.notify_all();
  }
  void on_message(windlass::Connection& c, const windlass::Message& msg) override {
    if (msg.data == "throw") throw std::runtime_error("boom");
    if (msg.data == "flood") {
      std::string big(64 * 1024, 'x');
      for (int i = 0; i < 64 && windlass::accepted(c.send(big)); ++i) {
      }
    } else {
      c.send(msg);
    }
    std::lock_guard lock(ev.m);
    ev.messages.emplace_back(msg.data);
    ev.cv.notify_all();
  }
  void on_close(windlass::Connection&, const windlass::CloseInfo& info) override {
    std::lock_guard lock(ev.m);
    ev.closes.push_back(info);
    ev.cv.notify_all();
  }
  void on_error(windlass::Connection&, std::exception_ptr e) override {
    std::lock_guard lock(ev.m);
    ev.errors.push_back(windlass::describe_exception(e));
    ev.cv.notify_all();
  }
  std::vector<std::string> subprotocols() const override { return {"chat.v2", "chat.v1"}; }

  Events& ev;
  windlass::Connection last;  // loop thread only
  std::string last_client;    // loop thread only
};

class AppTest : public ::testing::Test {
 protected:
  void start(windlass::ServerOptions so = {}, windlass::WsOptions wo = {}) {
    so.host = "127.0.0.1";
    so.port = 0;
    so.handle_signals = false;
    if (so.threads == 0) so.threads = 1;  // Recorder keeps per-loop state
    app = std::make_unique<windlass::App>(so);
    recorder = std::make_shared<Recorder>(events);
    app->route("/ws", recorder, wo);
    app->http("/hello", [](const windlass::Request& req, windlass::Response& res) {
      res = windlass::Response::text(200, "hello " + req.query_param("name").value_or("nobody"));
    });
    app->listen();
    port = app->port();
    thread = std::thread([this] { app->run(); });
  }
  void TearDown() override {
    if (app) {
      app->stop();
      thread.join();
    }
  }
  // Runs `fn` on the loop thread and waits for its result.
  template <class F>
  auto on_loop(F fn) {
    std::promise<decltype(fn())> p;
    app->loop().post([&] { p.set_value(fn()); });
    return p.get_future().get();
  }

  Events events;
  std::shared_ptr<Recorder> recorder;
  std::unique_ptr<windlass::App> app;
  std::thread thread;
  uint16_t port = 0;
};

}  // namespace

TEST_F(AppTest, echoes_and_completes_the_close_handshake) {
  start();
  TestClient c(port);
  std::string head = c.handshake("/ws");
  ASSERT_NE(head.find("101 Switching Protocols"), std::string::npos) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos);
  c.send_frame(Op::text, "hi");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "hi");
  c.send_close(4000, "done");
  auto close = c.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->op, Op::close);
  EXPECT_EQ(close->close_code(), 4000);
  EXPECT_TRUE(c.wait_eof());
  ASSERT_TRUE(events.wait([](Events& e) { return !e.closes.empty(); }));
  EXPECT_EQ(events.closes[0].code, 4000);
  EXPECT_EQ(events.closes[0].reason, "done");
  EXPECT_EQ(events.closes[0].cause, windlass::CloseCause::peer_closed);
  EXPECT_TRUE(events.closes[0].clean);
}

TEST_F(AppTest, negotiates_the_servers_preferred_subprotocol) {
  start();
  TestClient c(port);
  std::string head = c.handshake("/ws", "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n");
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: chat.v2\r\n"), std::string::npos) << head;
}

TEST_F(AppTest, handle_kept_after_close_is_safe) {
  start();
  {
    TestClient c(port);
    c.handshake("/ws");
    ASSERT_TRUE(events.wait([](Events& e) { return e.opens == 1; }));
  }
  ASSERT_TRUE(events.wait([](Events& e) { return e.closes.size() == 1; }));
  EXPECT_EQ(events.closes[0].cause, windlass::CloseCause::transport_closed);
  EXPECT_EQ(events.closes[0].code, 1006);
  windlass::SendStatus sent = on_loop([&] {
    recorder->last.close(1000, "late");  // must do nothing
    return recorder->last.send("anyone?");
  });
  EXPECT_EQ(sent, windlass::SendStatus::closed);
  EXPECT_FALSE(on_loop([&] { return recorder->last.is_open(); }));
  EXPECT_NE(on_loop([&] { return recorder->last.id(); }), 0u);
}

TEST_F(AppTest, exception_in_on_message_goes_to_on_error_and_closes_1011) {
  start();
  TestClient c(port);
  c.handshake("/ws");
  c.send_frame(Op::text, "throw");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->op, Op::close);
  EXPECT_EQ(f->close_code(), 1011);
  ASSERT_TRUE(events.wait([](Events& e) { return !e.errors.empty(); }));
  EXPECT_EQ(events.errors[0], "boom");
  // The server still serves others.
  TestClient d(port);
  ASSERT_NE(d.handshake("/ws").find("101"), std::string::npos);
  d.send_frame(Op::text, "still here");
  auto g = d.read_frame();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->payload, "still here");
}

TEST_F(AppTest, send_from_another_thread_reaches_the_client) {
  start();
  TestClient c(port);
  c.handshake("/ws");
  ASSERT_TRUE(events.wait([](Events& e) { return e.opens == 1; }));
  windlass::Connection handle = on_loop([&] { return recorder->last; });
  EXPECT_EQ(handle.send("from a worker thread"), windlass::SendStatus::queued);
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "from a worker thread");
}

TEST_F(AppTest, protocol_error_closes_with_precise_code) {
  start();
  TestClient c(port);
  c.handshake("/ws");
  c.send_frame(Op::text, std::string("\xc0\xaf", 2));  // overlong '/'
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->op, Op::close);
  EXPECT_EQ(f->close_code(), 1007);
  EXPECT_TRUE(c.wait_eof());
  ASSERT_TRUE(events.wait([](Events& e) { return !e.closes.empty(); }));
  EXPECT_EQ(events.closes[0].cause, windlass::CloseCause::protocol_error);
}

TEST_F(AppTest, message_over_the_limit_is_refused_with_1009) {
  windlass::WsOptions wo;
  wo.max_message_size = 1000;
  start({}, wo);
  TestClient c(port);
  c.handshake("/ws");
  c.send_frame(Op::binary, std::string(1001, 'a'));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1009);
}

TEST_F(AppTest, answers_plain_http_and_refuses_bad_requests_precisely) {
  start();
  struct Case {
    std::string request, expect;
  } cases[] = {
      {"GET /hello?name=ada HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK"},
      {"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 Upgrade Required"},
      {"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405"},
      {"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
      {"GET /hello HTTP/1.1\r\n\r\n", "HTTP/1.1 400"},
      {"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400"},
      {"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505"},
      {"POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 501"},
      {"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", "HTTP/1.1 413"},
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
       "HTTP/1.1 426"},
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
       "HTTP/1.1 400"},
      {"\x16\x03\x01 garbage\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", "HTTP/1.1 431"},
  };
  for (auto& tc : cases) {
    TestClient c(port);
    c.write_raw(tc.request);
    std::string head = c.read_http_head();
    EXPECT_EQ(head.substr(0, tc.expect.size()), tc.expect) << tc.request.substr(0, 60) << "\n" << head;
  }
  TestClient v(port);
  v.write_raw("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  EXPECT_NE(v.read_http_head().find("Sec-WebSocket-Version: 13"), std::string::npos);
}

TEST_F(AppTest, keeps_plain_http_connections_alive) {
  start();
  TestClient c(port);
  c.write_raw("GET /hello?name=a HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?name=b HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read_http_head().substr(0, 15), "HTTP/1.1 200 OK");
}

TEST_F(AppTest, slow_consumer_is_closed_at_the_send_queue_limit) {
  windlass::ServerOptions so;
  so.max_send_queue = 256 * 1024;
  start(so);
  TestClient c(port);
  c.handshake("/ws");
  c.send_frame(Op::text, "flood");  // the server queues 4 MiB; we never read
  ASSERT_TRUE(events.wait([](Events& e) { return !e.closes.empty(); }));
  EXPECT_EQ(events.closes[0].cause, windlass::CloseCause::slow_consumer);
  EXPECT_EQ(events.closes[0].code, 1008);
}

TEST_F(AppTest, keepalive_closes_a_peer_that_never_answers_pings) {
  windlass::ServerOptions so;
  so.sweep_interval = 20ms;
  windlass::WsOptions wo;
  wo.ping_interval = 50ms;
  wo.pong_timeout = 100ms;
  start(so, wo);
  TestClient c(port);  // reads nothing and so never answers the ping
  c.handshake("/ws");
  ASSERT_TRUE(events.wait([](Events& e) { return !e.closes.empty(); }, 3000ms));
  EXPECT_EQ(events.closes[0].cause, windlass::CloseCause::keepalive_timeout);
}

TEST_F(AppTest, graceful_stop_sends_1001_to_every_client) {
  start();
  TestClient a(port), b(port);
  a.handshake("/ws");
  b.handshake("/ws");
  ASSERT_TRUE(events.wait([](Events& e) { return e.opens == 2; }));
  app->stop();
  for (TestClient* c : {&a, &b}) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, Op::close);
    EXPECT_EQ(f->close_code(), 1001);
    c->send_close(1001);
  }
  thread.join();
  app.reset();
  EXPECT_EQ(events.closes.size(), 2u);
  for (auto& ci : events.closes) EXPECT_EQ(ci.cause, windlass::CloseCause::shutdown);
}

TEST_F(AppTest, handshake_past_max_connections_gets_503) {
  windlass::ServerOptions so;
  so.max_connections = 1;
  start(so);
  TestClient a(port);
  ASSERT_NE(a.handshake("/ws").find("101"), std::string::npos);
  TestClient b(port);
  EXPECT_EQ(b.handshake("/ws").substr(0, 12), "HTTP/1.1 503");
}

TEST_F(AppTest, slowloris_head_is_refused_with_408) {
  windlass::ServerOptions so;
  so.header_timeout = 200ms;
  so.sweep_interval = 20ms;
  start(so);
  TestClient c(port);
  c.write_raw("GET /ws HTTP/1.1\r\nHost:");
  EXPECT_EQ(c.read_http_head().substr(0, 12), "HTTP/1.1 408");
}

TEST_F(AppTest, stats_and_access_log_count_what_happened) {
  std::mutex m;
  std::vector<windlass::AccessEvent::Kind> kinds;
  std::vector<int> statuses;
  std::vector<std::string> paths;
  windlass::ServerOptions so;
  so.on_access = [&](const windlass::AccessEvent& e) {
    std::lock_guard lock(m);
    kinds.push_back(e.kind);
    statuses.push_back(e.status);
    paths.emplace_back(e.path);
  };
  start(so);
  {
    TestClient c(port);
    c.write_raw("GET /nope?token=secret HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.read_http_head().substr(0, 12), "HTTP/1.1 404");
  }
  {
    TestClient c(port);
    c.handshake("/ws?token=secret");
    c.send_frame(Op::text, "12345");
    ASSERT_TRUE(c.read_frame());
    c.send_close(1000);
    ASSERT_TRUE(c.read_frame());
  }
  ASSERT_TRUE(events.wait([](Events& e) { return !e.closes.empty(); }));
  windlass::Stats s = app->stats();
  EXPECT_EQ(s.websockets_opened, 1u);
  EXPECT_EQ(s.messages_in, 1u);
  EXPECT_EQ(s.bytes_in, 5u);
  EXPECT_EQ(s.messages_out, 1u);
  EXPECT_EQ(s.refused_by_status[404], 1u);
  EXPECT_EQ(s.closes_by_cause[windlass::CloseCause::peer_closed], 1u);
  EXPECT_EQ(s.close_codes[1000], 1u);
  EXPECT_GE(s.connections_accepted, 2u);
  EXPECT_GT(s.rss_bytes, 0u);
  ASSERT_EQ(s.loops.size(), 1u);
  std::lock_guard lock(m);
  using K = windlass::AccessEvent::Kind;
  EXPECT_EQ(kinds, (std::vector<K>{K::refused, K::upgrade, K::close}));
  EXPECT_EQ(statuses[0], 404);
  EXPECT_EQ(statuses[1], 101);
  for (auto& p : paths) EXPECT_EQ(p.find("secret"), std::string::npos) << "query strings stay out of logs";
}

TEST_F(AppTest, listens_on_ipv6_and_reports_the_peer_address) {
  windlass::ServerOptions so;
  so.port = 0;
  so.handle_signals = false;
  so.threads = 1;
  so.host = "::1";
  app = std::make_unique<windlass::App>(so);
  recorder = std::make_shared<Recorder>(events);
  app->route("/ws", recorder);
  try {
    app->listen();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  thread = std::thread([this] { app->run(); });
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(app->port());
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string req =
      "GET /ws HTTP/1.1\r\nHost: [::1]\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  char buf[512];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ASSERT_GT(n, 12);
  EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 101");
  ASSERT_TRUE(events.wait([](Events& e) { return e.opens == 1; }));
  EXPECT_EQ(on_loop([&] { return recorder->last.remote_address(); }), "::1");
  ::close(fd);
}

TEST_F(AppTest, blocklist_and_origin_allow_list_refuse_with_403) {
  windlass::ServerOptions so;
  so.access.allowed_origins = {"https://chat.example.com"};
  so.access.trusted_proxies = {"127.0.0.1"};
  so.access.blocklist = {"203.0.113.0/24"};
  start(so);
  {
    TestClient c(port);
    EXPECT_EQ(c.handshake("/ws", "Origin: https://evil.example.net\r\n").substr(0, 12), "HTTP/1.1 403");
  }
  {
    TestClient c(port);
    EXPECT_EQ(c.handshake("/ws", "Origin: https://chat.example.com\r\n").substr(0, 12), "HTTP/1.1 101");
  }
  {
    // The proxy says the client is in a blocked network.
    TestClient c(port);
    EXPECT_EQ(c.handshake("/ws", "Origin: https://chat.example.com\r\nX-Forwarded-For: 203.0.113.9\r\n").substr(0, 12),
              "HTTP/1.1 403");
  }
  {
    TestClient c(port);
    c.handshake("/ws", "Origin: https://chat.example.com\r\nX-Forwarded-For: 198.51.100.4, 127.0.0.1\r\n");
    ASSERT_TRUE(events.wait([](Events& e) { return e.opens == 2; }));
    EXPECT_EQ(on_loop([&] { return recorder->last_client; }), "198.51.100.4");
    EXPECT_EQ(on_loop([&] { return recorder->last.remote_address(); }), "127.0.0.1");
  }
}

TEST_F(AppTest, per_ip_connection_limit_answers_429_and_frees_the_slot_on_close) {
  windlass::ServerOptions so;
  so.access.max_connections_per_ip = 1;
  start(so);
  auto a = std::make_unique<TestClient>(port);
  ASSERT_EQ(a->handshake("/ws").substr(0, 12), "HTTP/1.1 101");
  {
    TestClient b(port);
    EXPECT_EQ(b.handshake("/ws").substr(0, 12), "HTTP/1.1 429");
  }
  a.reset();
  ASSERT_TRUE(events.wait([](Events& e) { return e.closes.size() == 1; }));
  TestClient c(port);
  EXPECT_EQ(c.handshake("/ws").substr(0, 12), "HTTP/1.1 101");
}

TEST_F(AppTest, message_rate_limit_closes_with_1008) {
  windlass::WsOptions wo;
  wo.rate_limit.messages_per_second = 5;
  wo.rate_limit.burst_messages = 5;
  start({}, wo);
  TestClient c(port);
  c.handshake("/ws");
  for (int i = 0; i < 20; ++i) c.send_frame(Op::text, "m");
  uint16_t code = 0;
  for (int i = 0; i < 30; ++i) {
    auto f = c.read_frame();
    if (!f) break;
    if (f->op == Op::close) {
      code = f->close_code();
      break;
    }
  }
  EXPECT_EQ(code, 1008);
  c.send_close(1008);
  ASSERT_TRUE(events.wait([](Events& e) { return !e.closes.empty(); }));
  EXPECT_EQ(events.closes[0].cause, windlass::CloseCause::rate_limited);
}
