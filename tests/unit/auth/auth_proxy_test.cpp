// AuthProxy through two real Apps on 127.0.0.1: the windlass server with
// the decorator, and a "web application" (a second App with an
// asynchronous HTTP handler) that answers by the session cookie it gets.
// Allow (the answer's user id reaching the state), 401/403, 500 and the
// rest to 503, a slow application to 504, the cache and its bounds, one
// request for concurrent identical checks, the client leaving while its
// check is in flight, and many handshakes at once over two loops.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "auth/answer_cache.hpp"
#include "unit/auth/log_capture.hpp"
#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/auth.hpp"

using namespace std::chrono_literals;
using windlass::AuthProxyOptions;
using windlass::AuthProxyRefusal;
using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;
using Op = windlass::proto::Opcode;

namespace {

// ------------------------------------------------------------ the web application

// Answers GET/POST /auth by the "session" cookie:
//   alice        200 {"user_id":"alice","role":"admin"}
//   num          200 {"user_id":7}
//   user-*       200 {"user_id":"user-*"}
//   plain        200 text "OK"
//   deny401      401        deny403  403      boom  500
//   redirect     302 Location: /login          badjson  200 application/json "nope"
//   slow         200 after 1 s
//   held-*       200 {"user_id":"held-*"} when the test calls release()
class WebApp {
 public:
  struct Seen {
    std::string method, cookie, authorization, forwarded_for, origin, uri, accept, secret, body, content_type;
  };

  WebApp() : r(windlass::test::test_options(1)) {
    r.app->http_async("/auth", [this](const windlass::Request& req, windlass::HttpResponder res) {
      handle(req, std::move(res));
    });
    r.start();
  }
  ~WebApp() {
    {
      std::lock_guard lock(m);
      held.clear();  // answered 500 while the App still runs
    }
    r.stop();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(r.port) + "/auth"; }
  int requests() {
    std::lock_guard lock(m);
    return static_cast<int>(seen.size());
  }
  Seen last() {
    std::lock_guard lock(m);
    return seen.back();
  }
  size_t held_count() {
    std::lock_guard lock(m);
    return held.size();
  }
  void release() {
    std::vector<std::pair<windlass::HttpResponder, std::string>> now;
    {
      std::lock_guard lock(m);
      now.swap(held);
    }
    for (auto& [res, name] : now) res.send(windlass::Response::json(200, R"({"user_id":")" + name + "\"}"));
  }

 private:
  void handle(const windlass::Request& req, windlass::HttpResponder res) {
    Seen s;
    s.method = std::string(req.method);
    auto get = [&](std::string_view name) { return std::string(req.header(name).value_or("")); };
    s.cookie = get("cookie");
    s.authorization = get("authorization");
    s.forwarded_for = get("x-forwarded-for");
    s.origin = get("origin");
    s.uri = get("x-original-uri");
    s.accept = get("accept");
    s.secret = get("x-proxy-secret");
    s.content_type = get("content-type");
    s.body = std::string(req.body);
    const std::string name = req.cookie("session").value_or("");
    {
      std::lock_guard lock(m);
      seen.push_back(s);
      if (name.rfind("held-", 0) == 0) {
        held.emplace_back(std::move(res), name);
        return;
      }
    }
    using windlass::Response;
    if (name == "alice") return void(res.send(Response::json(200, R"({"user_id":"alice","role":"admin"})")));
    if (name == "num") return void(res.send(Response::json(200, R"({"user_id":7})")));
    if (name.rfind("user-", 0) == 0)
      return void(res.send(Response::json(200, R"({"user_id":")" + name + "\"}")));
    if (name == "plain") return void(res.send(Response::text(200, "OK")));
    if (name == "deny401") return void(res.send(Response::text(401, "who are you")));
    if (name == "deny403") return void(res.send(Response::text(403, "not you")));
    if (name == "redirect") return void(res.send(Response::text(302, "").header("Location", "/login")));
    if (name == "badjson") return void(res.send(Response::json(200, "nope")));
    if (name == "slow") {
      windlass::Loop::current()->add_timer(1000ms,
                                           [res] { res.send(Response::json(200, R"({"user_id":"slow"})")); });
      return;
    }
    res.send(Response::text(500, "boom"));
  }

  std::mutex m;
  std::vector<Seen> seen;
  std::vector<std::pair<windlass::HttpResponder, std::string>> held;

 public:
  AppRunner r;
};

// ------------------------------------------------------------ the WebSocket side

struct User {
  std::string id;
  std::string role;
};

struct Seen {
  Waiter w;
  int upgrades = 0;
  std::vector<std::string> opened;  // "id/role"
  std::vector<int> failed;
  // Written by the loop under w's lock: read under it too (the client's
  // answer orders them, but not for TSan).
  int upgrades_now() {
    std::lock_guard lock(w.m);
    return upgrades;
  }
};

// Sends its connection's user id back for any message.
class Room final : public windlass::Component<User> {
 public:
  explicit Room(Seen& s) : seen(s) {}
  void on_upgrade(windlass::Upgrade& up) override {
    seen.w.update([&] { ++seen.upgrades; });
    up.accept();
  }
  void on_open(windlass::Connection& c) override {
    seen.w.update([&] { seen.opened.push_back(state(c).id + "/" + state(c).role); });
  }
  void on_upgrade_failed(windlass::Connection&, int status) override {
    seen.w.update([&] { seen.failed.push_back(status); });
  }
  void on_message(windlass::Connection& c, const windlass::Message&) override { c.send(state(c).id); }
  Seen& seen;
};

void fill_user(windlass::Upgrade& up, const windlass::AuthProxyAnswer& a) {
  User& u = up.connection().state<User>();
  u.id = a.user_id;
  u.role = a.body.string("role").value_or("-");
}

std::string upgrade_request(const std::string& path, const std::string& extra) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         extra + "\r\n";
}

// Polls `pred` (what it reads is not under a Waiter) until true or 3 s.
template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string status_of(const std::string& head) {
  return head.substr(0, 12);
}

// A steady clock the test moves (the cache's TTLs).
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> ms = std::make_shared<std::atomic<int64_t>>(1'000'000);
  std::function<std::chrono::steady_clock::time_point()> fn() const {
    return [ms = ms] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms->load())); };
  }
  void advance(std::chrono::milliseconds d) { *ms += d.count(); }
};

class AuthProxyTest : public ::testing::Test {
 protected:
  AuthProxyOptions options() {
    AuthProxyOptions o;
    o.url = web.url();
    o.timeout = 400ms;
    o.clock = clock.fn();
    return o;
  }
  void start(AuthProxyOptions o, windlass::AuthProxy::OnAllowed cb = fill_user, unsigned threads = 1) {
    ws = std::make_unique<AppRunner>(windlass::test::test_options(threads));
    proxy = std::make_shared<windlass::AuthProxy>(*ws->app, std::make_shared<Room>(seen), std::move(o),
                                                  std::move(cb));
    ws->app->route("/ws", proxy);
    ws->start();
  }
  void TearDown() override {
    if (ws) ws->stop();
  }
  std::string connect(const std::string& cookie, const std::string& path = "/ws") {
    TestClient c(ws->port);
    return status_of(c.handshake(path, cookie.empty() ? "" : "Cookie: session=" + cookie + "\r\n"));
  }

  windlass::test::LogCapture log;
  FakeClock clock;
  WebApp web;
  Seen seen;
  std::unique_ptr<AppRunner> ws;
  std::shared_ptr<windlass::AuthProxy> proxy;
};

TEST_F(AuthProxyTest, allows_and_the_answer_reaches_the_state) {
  AuthProxyOptions o = options();
  o.headers.emplace_back("X-Proxy-Secret", "s3cret");
  start(o);
  TestClient c(ws->port);
  const std::string head = c.handshake("/ws?room=1",
                                       "Cookie: session=alice\r\nAuthorization: Bearer t0k\r\n"
                                       "Origin: https://app.example\r\n");
  ASSERT_EQ(status_of(head), "HTTP/1.1 101") << head;
  ASSERT_TRUE(seen.w.wait([&] { return seen.opened.size() == 1; }));
  EXPECT_EQ(seen.opened[0], "alice/admin");
  c.send_frame(Op::text, "who am i");
  EXPECT_EQ(c.read_frame()->payload, "alice");

  const WebApp::Seen s = web.last();
  EXPECT_EQ(s.method, "GET");
  EXPECT_EQ(s.cookie, "session=alice");
  EXPECT_EQ(s.authorization, "Bearer t0k");
  EXPECT_EQ(s.forwarded_for, "127.0.0.1");
  EXPECT_EQ(s.origin, "https://app.example");
  EXPECT_EQ(s.uri, "/ws?room=1");
  EXPECT_EQ(s.accept, "application/json");
  EXPECT_EQ(s.secret, "s3cret");
  EXPECT_EQ(s.body, "");
  EXPECT_EQ(seen.upgrades_now(), 1) << "the wrapped component decided after the check";
  EXPECT_EQ(proxy->stats().allowed, 1u);
  EXPECT_EQ(proxy->stats().requests, 1u);
}

TEST_F(AuthProxyTest, an_integer_user_id_and_a_body_that_is_not_json) {
  start(options());
  EXPECT_EQ(connect("num"), "HTTP/1.1 101");
  EXPECT_EQ(connect("plain"), "HTTP/1.1 101");
  ASSERT_TRUE(seen.w.wait([&] { return seen.opened.size() == 2; }));
  EXPECT_EQ(seen.opened[0], "7/-");
  EXPECT_EQ(seen.opened[1], "/-");
}

TEST_F(AuthProxyTest, post_sends_what_it_forwards_as_json_too) {
  AuthProxyOptions o = options();
  o.method = "POST";
  start(o);
  TestClient c(ws->port);
  ASSERT_EQ(status_of(c.handshake("/ws?room=1", "Cookie: session=alice\r\nOrigin: https://app.example\r\n")),
            "HTTP/1.1 101");
  const WebApp::Seen s = web.last();
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.content_type, "application/json");
  EXPECT_EQ(s.body,
            R"({"client_address":"127.0.0.1","origin":"https://app.example","path":"/ws","query":"room=1"})");
}

TEST_F(AuthProxyTest, refuses_with_the_applications_401_and_403) {
  start(options());
  {
    TestClient c(ws->port);
    EXPECT_EQ(status_of(c.handshake("/ws", "Cookie: session=deny401\r\n")), "HTTP/1.1 401");
    EXPECT_EQ(c.read_until_eof(), "not authenticated\n");
  }
  EXPECT_EQ(connect("deny403"), "HTTP/1.1 403");
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 2; }));
  EXPECT_EQ(seen.failed, (std::vector<int>{401, 403}));
  EXPECT_EQ(seen.upgrades_now(), 0);
  const auto st = proxy->stats();
  EXPECT_EQ(st.refused_for(AuthProxyRefusal::unauthorized), 1u);
  EXPECT_EQ(st.refused_for(AuthProxyRefusal::forbidden), 1u);
  const auto lines = log.matching("auth proxy: 127.0.0.1 /ws: ");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "auth proxy: 127.0.0.1 /ws: GET " + web.url() + " answered 401");
}

TEST_F(AuthProxyTest, without_credentials_it_refuses_without_asking) {
  start(options());
  EXPECT_EQ(connect(""), "HTTP/1.1 401");
  EXPECT_EQ(web.requests(), 0);
  EXPECT_EQ(proxy->stats().refused_for(AuthProxyRefusal::no_credentials), 1u);
  EXPECT_EQ(log.matching("auth proxy: 127.0.0.1 /ws: none of Cookie, Authorization in the request").size(),
            1u);
}

TEST_F(AuthProxyTest, asks_without_credentials_when_told_to) {
  AuthProxyOptions o = options();
  o.refuse_without_credentials = false;
  start(o);
  EXPECT_EQ(connect(""), "HTTP/1.1 503") << "the web app answers 500 to no session";
  EXPECT_EQ(web.requests(), 1);
}

TEST_F(AuthProxyTest, other_answers_and_no_answer_are_503) {
  start(options());
  EXPECT_EQ(connect("boom"), "HTTP/1.1 503");
  EXPECT_EQ(connect("redirect"), "HTTP/1.1 503");
  EXPECT_EQ(connect("badjson"), "HTTP/1.1 503");
  const auto st = proxy->stats();
  EXPECT_EQ(st.refused_for(AuthProxyRefusal::bad_status), 2u);
  EXPECT_EQ(st.refused_for(AuthProxyRefusal::bad_answer), 1u);
  EXPECT_EQ(
      log.matching("answered 302, not 2xx, 401 or 403 (Location: /login; a redirect to a login page?").size(),
      1u);
  EXPECT_EQ(log.matching("not a JSON object: nope").size(), 1u);
  EXPECT_EQ(connect("boom"), "HTTP/1.1 503");
  EXPECT_EQ(web.requests(), 4) << "failures are not cached";
}

TEST(AuthProxyDown, an_unreachable_application_is_503) {
  // A port nobody listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  windlass::test::LogCapture log;
  Seen seen;
  AppRunner ws;
  AuthProxyOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/auth";
  auto proxy = std::make_shared<windlass::AuthProxy>(*ws.app, std::make_shared<Room>(seen), o);
  ws.app->route("/ws", proxy);
  ws.start();
  TestClient c(ws.port);
  EXPECT_EQ(status_of(c.handshake("/ws", "Cookie: session=alice\r\n")), "HTTP/1.1 503");
  EXPECT_EQ(c.read_until_eof(), "authentication service unavailable\n");
  EXPECT_EQ(proxy->stats().refused_for(AuthProxyRefusal::unavailable), 1u);
  EXPECT_EQ(log.matching("connection refused").size(), 1u);
}

TEST_F(AuthProxyTest, a_slow_application_is_504_at_the_proxys_own_deadline) {
  start(options());  // timeout 400 ms, the route's upgrade_timeout 10 s
  const auto t0 = std::chrono::steady_clock::now();
  {
    TestClient c(ws->port);
    EXPECT_EQ(status_of(c.handshake("/ws", "Cookie: session=slow\r\n")), "HTTP/1.1 504");
    EXPECT_EQ(c.read_until_eof(), "authentication service timed out\n");
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 900ms);
  EXPECT_EQ(proxy->stats().refused_for(AuthProxyRefusal::timeout), 1u);
}

TEST_F(AuthProxyTest, caches_allow_and_deny_for_their_ttls) {
  start(options());  // allow 10 s, deny 2 s, on the fake clock
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(connect("deny401"), "HTTP/1.1 401");
  EXPECT_EQ(connect("deny401"), "HTTP/1.1 401");
  EXPECT_EQ(web.requests(), 2);
  EXPECT_EQ(proxy->stats().cache_hits, 2u);
  EXPECT_EQ(proxy->stats().cache_entries, 2u);
  ASSERT_TRUE(seen.w.wait([&] { return seen.opened.size() == 2; }));
  EXPECT_EQ(seen.opened[1], "alice/admin") << "a cached answer fills the state too";
  EXPECT_EQ(log.matching("answered 401 (cached)").size(), 1u);

  clock.advance(2001ms);  // the deny expired, the allow did not
  EXPECT_EQ(connect("deny401"), "HTTP/1.1 401");
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 3);
  clock.advance(8000ms);
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 4);

  // Another cookie, or the same one with another path, is another key.
  EXPECT_EQ(connect("user-1"), "HTTP/1.1 101");
  EXPECT_EQ(connect("alice", "/ws?other"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 6);
  proxy->clear_cache();
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 7);
}

TEST_F(AuthProxyTest, the_cache_is_bounded_least_recently_used_first) {
  AuthProxyOptions o = options();
  o.cache_entries = 2;
  start(o);
  EXPECT_EQ(connect("user-1"), "HTTP/1.1 101");
  EXPECT_EQ(connect("user-2"), "HTTP/1.1 101");
  EXPECT_EQ(connect("user-1"), "HTTP/1.1 101");  // a hit: user-2 is now the least recent
  EXPECT_EQ(connect("user-3"), "HTTP/1.1 101");  // evicts user-2
  EXPECT_EQ(web.requests(), 3);
  EXPECT_EQ(proxy->stats().cache_entries, 2u);
  EXPECT_EQ(connect("user-1"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 3);
  EXPECT_EQ(connect("user-2"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 4);
}

TEST_F(AuthProxyTest, no_cache_when_its_ttls_are_zero) {
  AuthProxyOptions o = options();
  o.allow_ttl = 0ms;
  o.deny_ttl = 0ms;
  start(o);
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(connect("alice"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 2);
  EXPECT_EQ(proxy->stats().cache_entries, 0u);
}

TEST_F(AuthProxyTest, concurrent_identical_checks_share_one_request_across_loops) {
  AuthProxyOptions o = options();
  o.timeout = 5000ms;  // the test holds the answer
  start(o, fill_user, /*threads=*/2);
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<TestClient>(ws->port));
    clients.back()->write_raw(upgrade_request("/ws", "Cookie: session=held-ada\r\n"));
  }
  ASSERT_TRUE(eventually([&] { return proxy->stats().coalesced == kClients - 1 && web.held_count() == 1; }))
      << "coalesced " << proxy->stats().coalesced << ", held " << web.held_count();
  EXPECT_EQ(web.requests(), 1);
  web.release();
  for (auto& c : clients) EXPECT_EQ(status_of(c->read_http_head()), "HTTP/1.1 101");
  ASSERT_TRUE(seen.w.wait([&] { return seen.opened.size() == kClients; }));
  for (const auto& opened : seen.opened) EXPECT_EQ(opened, "held-ada/-");
  EXPECT_EQ(web.requests(), 1);
  EXPECT_EQ(proxy->stats().allowed, static_cast<uint64_t>(kClients));
}

TEST_F(AuthProxyTest, a_denial_reaches_every_waiter) {
  start(options(), fill_user, 2);
  // Not held: the first request may answer before the others ask, so
  // some get the cached answer instead; all get 403, with one request.
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<TestClient>(ws->port));
    clients.back()->write_raw(upgrade_request("/ws", "Cookie: session=deny403\r\n"));
  }
  for (auto& c : clients) EXPECT_EQ(status_of(c->read_http_head()), "HTTP/1.1 403");
  EXPECT_EQ(web.requests(), 1);
  const auto st = proxy->stats();
  EXPECT_EQ(st.refused_for(AuthProxyRefusal::forbidden), 6u);
  EXPECT_EQ(st.coalesced + st.cache_hits, 5u);
}

TEST_F(AuthProxyTest, the_client_leaving_while_its_check_is_in_flight) {
  AuthProxyOptions o = options();
  o.timeout = 5000ms;
  start(o);
  {
    TestClient c(ws->port);
    c.write_raw(upgrade_request("/ws", "Cookie: session=held-bob\r\n"));
    ASSERT_TRUE(eventually([&] { return web.held_count() == 1; }));
  }
  ASSERT_TRUE(seen.w.wait([&] { return seen.failed.size() == 1; }));
  EXPECT_EQ(seen.failed[0], 0) << "the client left first";
  web.release();  // the answer arrives for nobody, and is cached
  ASSERT_TRUE(eventually([&] { return proxy->stats().cache_entries == 1; }));
  EXPECT_EQ(connect("held-bob"), "HTTP/1.1 101");
  EXPECT_EQ(web.requests(), 1);
  EXPECT_EQ(seen.upgrades_now(), 1);
  EXPECT_EQ(proxy->stats().allowed, 1u) << "only the handshake that was still there";
}

TEST_F(AuthProxyTest, many_concurrent_handshakes_each_get_their_own_user) {
  AuthProxyOptions o = options();
  o.timeout = 5000ms;
  start(o, fill_user, 2);
  constexpr int kClients = 120;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<TestClient>(ws->port));
    clients.back()->write_raw(upgrade_request("/ws", "Cookie: session=user-" + std::to_string(i) + "\r\n"));
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(status_of(clients[static_cast<size_t>(i)]->read_http_head(5000)), "HTTP/1.1 101") << i;
  }
  for (int i = 0; i < kClients; ++i) {
    auto& c = *clients[static_cast<size_t>(i)];
    c.send_frame(Op::text, "?");
    auto f = c.read_frame();
    ASSERT_TRUE(f.has_value()) << i;
    EXPECT_EQ(f->payload, "user-" + std::to_string(i));
  }
  EXPECT_EQ(web.requests(), kClients);
  EXPECT_EQ(proxy->stats().allowed, static_cast<uint64_t>(kClients));
}

TEST_F(AuthProxyTest, the_callback_may_refuse_and_the_wrapped_component_may_refuse_after_it) {
  auto counter = windlass::PerIpCounter::make(1);
  ws = std::make_unique<AppRunner>(windlass::test::test_options(1));
  proxy = std::make_shared<windlass::AuthProxy>(
      *ws->app, std::make_shared<windlass::ConnectionLimit>(std::make_shared<Room>(seen), counter), options(),
      [](windlass::Upgrade& up, const windlass::AuthProxyAnswer& a) {
        if (a.body.string("role") != "admin") return up.refuse(403, "admins only");
        fill_user(up, a);
      });
  ws->app->route("/ws", proxy);
  ws->start();
  EXPECT_EQ(connect("user-1"), "HTTP/1.1 403");
  EXPECT_EQ(counter->count("127.0.0.1"), 0u);
  TestClient a(ws->port);
  ASSERT_EQ(status_of(a.handshake("/ws", "Cookie: session=alice\r\n")), "HTTP/1.1 101");
  EXPECT_EQ(connect("alice"), "HTTP/1.1 429") << "the limit inside ran after the cached allow";
  EXPECT_EQ(seen.upgrades_now(), 1);
}

TEST(AuthProxyOptionsCheck, bad_options_and_a_late_construction_throw) {
  Seen seen;
  AppRunner ws;
  auto inner = std::make_shared<Room>(seen);
  auto make = [&](AuthProxyOptions o) { windlass::AuthProxy p(*ws.app, inner, std::move(o)); };
  AuthProxyOptions o;
  o.url = "ftp://127.0.0.1/auth";
  EXPECT_THROW(make(o), std::invalid_argument);
  o.url = "http://127.0.0.1/auth";
  o.method = "PUT";
  EXPECT_THROW(make(o), std::invalid_argument);
  o.method = "GET";
  o.forward_headers = {"Bad Name"};
  EXPECT_THROW(make(o), std::invalid_argument);
  o.forward_headers = {"Cookie"};
  o.headers = {{"X-A", "b\r\nX-Injected: 1"}};
  EXPECT_THROW(make(o), std::invalid_argument);
  o.headers = {};
  o.timeout = 0ms;
  EXPECT_THROW(make(o), std::invalid_argument);
  o.timeout = 1000ms;
  ws.app->route("/ws", inner);
  ws.start();
  ws.on_loop([] {});  // run() has begun
  EXPECT_THROW(make(o), std::logic_error);
}

// ------------------------------------------------------------ the cache alone

TEST(AnswerCache, expires_and_evicts_the_least_recently_used) {
  using C = windlass::detail::AnswerCache<int>;
  using T = C::Clock::time_point;
  auto key = [](uint8_t b) {
    windlass::detail::CacheKey k{};
    k[0] = b;
    k[31] = b;
    return k;
  };
  C c(2);
  const T t0{std::chrono::seconds(100)};
  c.put(key(1), 10, t0 + 5s);
  c.put(key(2), 20, t0 + 5s);
  ASSERT_NE(c.find(key(1), t0), nullptr);
  c.put(key(3), 30, t0 + 5s);  // 2 was the least recently used
  EXPECT_EQ(c.find(key(2), t0), nullptr);
  EXPECT_EQ(*c.find(key(1), t0), 10);
  EXPECT_EQ(*c.find(key(3), t0), 30);
  c.put(key(1), 11, t0 + 1s);  // replaced, with a shorter life
  EXPECT_EQ(*c.find(key(1), t0), 11);
  EXPECT_EQ(c.find(key(1), t0 + 1s), nullptr) << "expired at its time";
  EXPECT_EQ(c.size(), 1u);
  C none(0);
  none.put(key(1), 1, t0 + 5s);
  EXPECT_EQ(none.find(key(1), t0), nullptr);
}

}  // namespace
