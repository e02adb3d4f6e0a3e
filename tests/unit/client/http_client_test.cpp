// HttpClient against real servers on 127.0.0.1: a windlass App on its own
// thread for the well-behaved answers, and small raw sockets for the peers
// that never answer, refuse, or stream too much. The client runs on the
// test thread's Loop, as it would on one of the server's loops.
#include "windlass/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "unit/tls/test_certs.hpp"
#include "windlass/app.hpp"

using namespace std::chrono_literals;
using windlass::HttpClient;
using windlass::HttpClientError;
using windlass::HttpClientOptions;
using windlass::HttpClientRequest;
using windlass::HttpClientResult;
using windlass::Loop;

namespace {

// A listening socket on 127.0.0.1 that never accepts: the kernel completes
// the TCP handshake from its backlog and takes the request, and no answer
// ever comes.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "SilentServer: " << std::strerror(errno);
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port on 127.0.0.1 with nothing listening: bound (so the kernel picks a
// free one) and closed again.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Accepts one connection on its own thread, reads the request head and
// writes `response` (in pieces, while the peer takes them), then closes.
// Bounded: gives up after 5 s without progress.
class RawServer {
 public:
  explicit RawServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RawServer() {
    thread_.join();
    ::close(fd_);
  }
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  static bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, 5000) == 1;
  }
  void serve() {
    if (!wait_for(fd_, POLLIN)) return;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && wait_for(c, POLLIN)) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    size_t off = 0;
    while (off < response_.size() && wait_for(c, POLLOUT)) {
      ssize_t n = ::send(c, response_.data() + off, response_.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the client hung up (as it should once over its cap)
      off += static_cast<size_t>(n);
    }
    ::close(c);
  }

  std::string response_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    windlass::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.threads = 1;
    so.handle_signals = false;
    so.max_body_size = 4u << 20;  // room for a body past curl's 1 MiB Expect: 100-continue threshold
    customize(so);
    app = std::make_unique<windlass::App>(so);
    // Echoes the method, the body and the request headers the tests look at.
    app->http("/echo", [](const windlass::Request& req, windlass::Response& res) {
      res = windlass::Response::text(200, std::string(req.body));
      res.header("X-Method", std::string(req.method));
      for (const char* name : {"x-test", "content-type", "user-agent", "expect"}) {
        res.header(std::string("X-Got-") + name, std::string(req.header(name).value_or("(none)")));
      }
    });
    app->http("/big", [](const windlass::Request&, windlass::Response& res) {
      res = windlass::Response::text(200, std::string(256 * 1024, 'b'));
    });
    app->http("/redirect", [](const windlass::Request&, windlass::Response& res) {
      res = windlass::Response::text(302, "");
      res.header("Location", "/echo");
    });
    app->listen();
    port = app->port();
    server = std::thread([this] { app->run(); });
  }
  void TearDown() override {
    client.reset();  // before the loop, and before the server goes
    app->stop();
    server.join();
  }

  // A fixture that needs other server options changes them here.
  virtual void customize(windlass::ServerOptions&) {}

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }

  HttpClient& make_client(HttpClientOptions options = {}) {
    client = std::make_unique<HttpClient>(loop, std::move(options));
    return *client;
  }

  // Runs the client's loop until `done` holds (checked every few
  // milliseconds: this is the test polling, not the client) or `limit`
  // passes. False on the limit.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    bool timed_out = false;
    auto guard = loop.add_timer(limit, [&] {
      timed_out = true;
      loop.stop();
    });
    auto poll = loop.add_timer(
        0ms,
        [&] {
          if (done()) loop.stop();
        },
        2ms);
    loop.run();
    loop.cancel_timer(guard);
    loop.cancel_timer(poll);
    return !timed_out;
  }
  // Runs the loop for `d`, whatever happens.
  void run_for(std::chrono::milliseconds d) {
    loop.add_timer(d, [&] { loop.stop(); });
    loop.run();
  }

  uint64_t accepted() const { return app->stats().connections_accepted; }

  std::unique_ptr<windlass::App> app;
  std::thread server;
  uint16_t port = 0;
  Loop loop;
  std::unique_ptr<HttpClient> client;
};

// The same App with a TLS listener beside the plain one, its certificate
// (for "localhost") issued by a throw-away CA written to ca.pem.
class HttpClientTlsTest : public HttpClientTest {
 protected:
  void customize(windlass::ServerOptions& so) override {
    auto files = pki.issue("server", "windlass test server", 100);
    so.tls_host = "127.0.0.1";
    so.tls_port = 0;
    so.tls_certificate_file = files.certificate_chain_file;
    so.tls_private_key_file = files.private_key_file;
    ca_file = (pki.dir() / "ca.pem").string();
    FILE* fp = std::fopen(ca_file.c_str(), "wb");
    ASSERT_NE(fp, nullptr);
    EXPECT_EQ(PEM_write_X509(fp, pki.ca()), 1);
    std::fclose(fp);
  }
  std::string tls_url(const std::string& host, const std::string& path) const {
    return "https://" + host + ":" + std::to_string(app->tls_port()) + path;
  }

  windlass::tls::testing::TestPki pki;
  std::string ca_file;
};

HttpClientRequest get(std::string url) {
  HttpClientRequest r;
  r.url = std::move(url);
  return r;
}

}  // namespace

TEST_F(HttpClientTest, get_returns_status_headers_and_body) {
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  HttpClientRequest r = get(url("/echo"));
  r.headers = {{"X-Test", "one two"}};
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error_text;
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->error_text, "");
  EXPECT_EQ(got->header("x-method"), "GET");
  EXPECT_EQ(got->header("X-GOT-X-TEST"), "one two");
  EXPECT_TRUE(got->header("x-got-user-agent")->starts_with("windlass/"));
  EXPECT_EQ(got->header("x-got-expect"), "(none)");
  EXPECT_EQ(got->header("content-length"), "0");
  EXPECT_FALSE(got->header("no-such-header").has_value());
  EXPECT_EQ(got->body, "");
  EXPECT_EQ(c.in_flight(), 0u);
}

TEST_F(HttpClientTest, post_sends_body_and_headers) {
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  HttpClientRequest r;
  r.method = "POST";
  r.url = url("/echo");
  r.headers = {{"Content-Type", "application/json"}, {"X-Test", "42"}};
  r.body = R"({"event":"member_added"})";
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error_text;
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->header("x-method"), "POST");
  EXPECT_EQ(got->header("x-got-content-type"), "application/json");
  EXPECT_EQ(got->header("x-got-x-test"), "42");
  EXPECT_EQ(got->header("x-got-expect"), "(none)");
  EXPECT_EQ(got->body, R"({"event":"member_added"})");
}

// Past 1 MiB, libcurl would send "Expect: 100-continue" and wait up to a
// second for an answer the App never gives before sending the body.
TEST_F(HttpClientTest, post_without_content_type_sends_none_and_no_expect_100_continue) {
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  HttpClientRequest r;
  r.method = "POST";
  r.url = url("/echo");
  r.body = std::string(1536 * 1024, 'p');  // curl would ask "Expect: 100-continue" past 1 MiB
  r.max_response_size = 2u << 20;          // echoed back
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error_text;
  EXPECT_EQ(got->header("x-got-content-type"), "(none)");
  EXPECT_EQ(got->header("x-got-expect"), "(none)");
  EXPECT_EQ(got->body.size(), 1536u * 1024);
}

TEST_F(HttpClientTest, sends_other_methods) {
  auto& c = make_client();
  std::vector<HttpClientResult> got(3);
  int done = 0;
  HttpClientRequest put;
  put.method = "PUT";
  put.url = url("/echo");
  put.body = "replaced";
  HttpClientRequest del;
  del.method = "DELETE";
  del.url = url("/echo");
  HttpClientRequest head;
  head.method = "HEAD";
  head.url = url("/big");
  head.max_response_size = 10;  // the body announced is larger, and never sent
  c.request(std::move(put), [&](HttpClientResult r) { got[0] = std::move(r), ++done; });
  c.request(std::move(del), [&](HttpClientResult r) { got[1] = std::move(r), ++done; });
  c.request(std::move(head), [&](HttpClientResult r) { got[2] = std::move(r), ++done; });
  ASSERT_TRUE(run_until([&] { return done == 3; }));
  ASSERT_TRUE(got[0].ok()) << got[0].error_text;
  EXPECT_EQ(got[0].header("x-method"), "PUT");
  EXPECT_EQ(got[0].body, "replaced");
  ASSERT_TRUE(got[1].ok()) << got[1].error_text;
  EXPECT_EQ(got[1].header("x-method"), "DELETE");
  ASSERT_TRUE(got[2].ok()) << got[2].error_text;
  EXPECT_EQ(got[2].status, 200);
  EXPECT_EQ(got[2].header("content-length"), std::to_string(256 * 1024));
  EXPECT_EQ(got[2].body, "");
}

TEST_F(HttpClientTest, answers_many_concurrent_requests) {
  auto& c = make_client({.max_concurrent = 64, .max_queued = 1024});
  constexpr int kRequests = 200;
  std::vector<std::string> bodies(kRequests);
  int done = 0, failed = 0;
  uint64_t before = accepted();
  for (int i = 0; i < kRequests; ++i) {
    HttpClientRequest r;
    r.method = "POST";
    r.url = url("/echo");
    r.body = "request " + std::to_string(i);
    c.request(std::move(r), [&, i](HttpClientResult res) {
      ++done;
      if (!res.ok() || res.status != 200) ++failed;
      bodies[static_cast<size_t>(i)] = std::move(res.body);
    });
  }
  EXPECT_EQ(c.in_flight(), 64u);
  EXPECT_EQ(c.queued(), static_cast<size_t>(kRequests - 64));
  ASSERT_TRUE(run_until([&] { return done == kRequests; }, 10'000ms));
  EXPECT_EQ(failed, 0);
  for (int i = 0; i < kRequests; ++i)
    EXPECT_EQ(bodies[static_cast<size_t>(i)], "request " + std::to_string(i));
  EXPECT_LE(accepted() - before, 64u);  // never more connections than slots
  EXPECT_EQ(c.in_flight(), 0u);
  EXPECT_EQ(c.queued(), 0u);
}

TEST_F(HttpClientTest, reuses_one_connection_for_sequential_requests) {
  auto& c = make_client({.max_concurrent = 1});
  uint64_t before = accepted();
  int done = 0, ok = 0;
  // Each request is made from the previous one's callback.
  std::function<void()> next = [&] {
    c.request(get(url("/echo")), [&](HttpClientResult res) {
      ok += res.ok() && res.status == 200;
      if (++done < 20) next();
    });
  };
  next();
  ASSERT_TRUE(run_until([&] { return done == 20; }));
  EXPECT_EQ(ok, 20);
  EXPECT_EQ(accepted() - before, 1u);
}

TEST_F(HttpClientTest, times_out_against_a_server_that_never_answers) {
  SilentServer silent;
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  HttpClientRequest r = get(silent.url());
  r.timeout = 200ms;
  auto started = Loop::Clock::now();
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  auto took = Loop::Clock::now() - started;
  EXPECT_EQ(got->error, HttpClientError::timeout) << got->error_text;
  EXPECT_FALSE(got->error_text.empty());
  EXPECT_EQ(got->status, 0);
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2000ms);
}

TEST_F(HttpClientTest, reports_connection_refused) {
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  c.request(get("http://127.0.0.1:" + std::to_string(closed_port()) + "/"),
            [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->error, HttpClientError::connect_failed) << got->error_text;
  EXPECT_FALSE(got->error_text.empty());
  EXPECT_STREQ(describe(got->error), "connection refused or failed");
}

TEST_F(HttpClientTest, refuses_a_response_announced_larger_than_the_cap) {
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  HttpClientRequest r = get(url("/big"));
  r.max_response_size = 64 * 1024;
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->error, HttpClientError::too_large) << got->error_text;
  EXPECT_EQ(got->error_text, "response body over 65536 bytes (announced by Content-Length)");
  EXPECT_EQ(got->status, 0);
  EXPECT_EQ(got->body, "");
}

TEST_F(HttpClientTest, stops_reading_a_streamed_response_past_the_cap) {
  // No Content-Length: the body ends when the server closes, so only the
  // bytes themselves can tell it is too large.
  RawServer raw("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(1 << 20, 's'));
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  HttpClientRequest r = get(raw.url());
  r.max_response_size = 64 * 1024;
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->error, HttpClientError::too_large) << got->error_text;
  EXPECT_EQ(got->error_text, "response body over 65536 bytes");
}

TEST_F(HttpClientTest, refuses_a_response_head_past_its_bound) {
  std::string head = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 200; ++i)
    head += "X-Filler-" + std::to_string(i) + ": " + std::string(400, 'h') + "\r\n";
  RawServer raw(head + "Content-Length: 0\r\n\r\n");
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  c.request(get(raw.url()), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->error, HttpClientError::too_large) << got->error_text;
}

TEST_F(HttpClientTest, reports_a_server_that_closes_without_answering) {
  RawServer raw("");
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  c.request(get(raw.url()), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->error, HttpClientError::connection_lost) << got->error_text;
}

TEST_F(HttpClientTest, reports_tls_failure_against_a_plain_http_server) {
  auto& c = make_client();
  std::optional<HttpClientResult> got;
  c.request(get("https://127.0.0.1:" + std::to_string(port) + "/echo"),
            [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->error, HttpClientError::tls) << got->error_text;
}

TEST_F(HttpClientTest, returns_redirects_unless_asked_to_follow) {
  auto& c = make_client();
  std::optional<HttpClientResult> plain, followed;
  c.request(get(url("/redirect")), [&](HttpClientResult res) { plain = std::move(res); });
  HttpClientRequest r = get(url("/redirect"));
  r.max_redirects = 2;
  c.request(std::move(r), [&](HttpClientResult res) { followed = std::move(res); });
  ASSERT_TRUE(run_until([&] { return plain && followed; }));
  ASSERT_TRUE(plain->ok()) << plain->error_text;
  EXPECT_EQ(plain->status, 302);
  EXPECT_EQ(plain->header("location"), "/echo");
  ASSERT_TRUE(followed->ok()) << followed->error_text;
  EXPECT_EQ(followed->status, 200);
  EXPECT_EQ(followed->header("x-method"), "GET");
  EXPECT_FALSE(followed->header("location").has_value());  // the final response's headers only
}

TEST_F(HttpClientTest, refuses_invalid_requests_without_calling_back_inside_request) {
  auto& c = make_client();
  std::vector<HttpClientResult> got;
  auto record = [&](HttpClientResult res) { got.push_back(std::move(res)); };
  HttpClientRequest bad_method = get(url("/echo"));
  bad_method.method = "GE T";
  HttpClientRequest split = get(url("/echo"));
  split.headers = {{"X-Test", "a\r\nX-Injected: 1"}};
  HttpClientRequest framing = get(url("/echo"));
  framing.headers = {{"Content-Length", "5"}};
  HttpClientRequest no_time = get(url("/echo"));
  no_time.timeout = 0ms;
  c.request(std::move(bad_method), record);
  c.request(std::move(split), record);
  c.request(std::move(framing), record);
  c.request(std::move(no_time), record);
  c.request(get("ftp://127.0.0.1:" + std::to_string(port) + "/"), record);
  c.request(get("file:///etc/passwd"), record);
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE(run_until([&] { return got.size() == 6; }));
  for (auto& r : got) EXPECT_EQ(r.error, HttpClientError::invalid_request) << r.error_text;
}

TEST_F(HttpClientTest, cancel_runs_the_callback_once_with_cancelled) {
  SilentServer silent;
  auto& c = make_client();
  int calls = 0;
  std::optional<HttpClientResult> got;
  auto id = c.request(get(silent.url()), [&](HttpClientResult res) {
    ++calls;
    got = std::move(res);
  });
  EXPECT_NE(id, 0u);
  bool first = false, second = true;
  int calls_inside_cancel = -1;
  loop.add_timer(50ms, [&] {
    first = c.cancel(id);
    calls_inside_cancel = calls;
    second = c.cancel(id);
  });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  run_for(50ms);
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
  EXPECT_EQ(calls_inside_cancel, 0);  // not called back from inside cancel()
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got->error, HttpClientError::cancelled);
  EXPECT_EQ(c.in_flight(), 0u);
  EXPECT_FALSE(c.cancel(id));
  EXPECT_FALSE(c.cancel(12345));
}

TEST_F(HttpClientTest, cancels_a_queued_request_and_starts_the_next_after_a_cancelled_one) {
  SilentServer silent;
  auto& c = make_client({.max_concurrent = 1});
  std::vector<HttpClientError> errors(3, HttpClientError::none);
  int done = 0;
  auto a = c.request(get(silent.url()), [&](HttpClientResult r) { errors[0] = r.error, ++done; });
  auto b = c.request(get(silent.url()), [&](HttpClientResult r) { errors[1] = r.error, ++done; });
  c.request(get(url("/echo")),
            [&](HttpClientResult r) { errors[2] = r.ok() ? HttpClientError::none : r.error, ++done; });
  EXPECT_EQ(c.in_flight(), 1u);
  EXPECT_EQ(c.queued(), 2u);
  EXPECT_TRUE(c.cancel(b));  // queued
  EXPECT_EQ(c.queued(), 1u);
  EXPECT_TRUE(c.cancel(a));  // in flight: its slot goes to the third
  EXPECT_EQ(c.in_flight(), 1u);
  EXPECT_EQ(c.queued(), 0u);
  ASSERT_TRUE(run_until([&] { return done == 3; }));
  EXPECT_EQ(errors[0], HttpClientError::cancelled);
  EXPECT_EQ(errors[1], HttpClientError::cancelled);
  EXPECT_EQ(errors[2], HttpClientError::none);
}

TEST_F(HttpClientTest, full_queue_refuses_at_once) {
  SilentServer silent;
  auto& c = make_client({.max_concurrent = 1, .max_queued = 2});
  std::vector<HttpClientError> errors;
  for (int i = 0; i < 4; ++i) {
    c.request(get(silent.url()), [&](HttpClientResult r) { errors.push_back(r.error); });
  }
  EXPECT_EQ(c.in_flight(), 1u);
  EXPECT_EQ(c.queued(), 2u);
  auto started = Loop::Clock::now();
  ASSERT_TRUE(run_until([&] { return !errors.empty(); }));
  EXPECT_LT(Loop::Clock::now() - started, 500ms);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], HttpClientError::queue_full);
  EXPECT_EQ(c.in_flight(), 1u);
  EXPECT_EQ(c.queued(), 2u);
}

TEST_F(HttpClientTest, timeout_counts_time_in_the_queue) {
  SilentServer silent;
  auto& c = make_client({.max_concurrent = 1});
  std::optional<HttpClientResult> queued;
  HttpClientRequest first = get(silent.url());
  first.timeout = 5000ms;
  HttpClientRequest second = get(url("/echo"));
  second.timeout = 150ms;
  c.request(std::move(first), [](HttpClientResult) {});
  c.request(std::move(second), [&](HttpClientResult r) { queued = std::move(r); });
  auto started = Loop::Clock::now();
  ASSERT_TRUE(run_until([&] { return queued.has_value(); }));
  EXPECT_LT(Loop::Clock::now() - started, 1000ms);
  EXPECT_EQ(queued->error, HttpClientError::timeout) << queued->error_text;
  EXPECT_EQ(c.in_flight(), 1u);  // the first is still waiting for its silent server
}

TEST_F(HttpClientTest, destroying_the_client_drops_every_callback) {
  SilentServer silent;
  auto& c = make_client({.max_concurrent = 4});
  int calls = 0;
  for (int i = 0; i < 3; ++i) c.request(get(silent.url()), [&](HttpClientResult) { ++calls; });
  for (int i = 0; i < 3; ++i) c.request(get(url("/big")), [&](HttpClientResult) { ++calls; });
  auto cancelled = c.request(get(silent.url()), [&](HttpClientResult) { ++calls; });
  c.request(get("bad url with spaces and no scheme"), [&](HttpClientResult) { ++calls; });
  EXPECT_TRUE(c.cancel(cancelled));  // its callback is due at the end of the turn
  EXPECT_EQ(c.in_flight(), 4u);
  EXPECT_EQ(c.queued(), 3u);
  client.reset();  // same turn: nothing has run yet
  run_for(300ms);
  EXPECT_EQ(calls, 0);
}

TEST_F(HttpClientTest, destroying_the_client_with_transfers_in_flight_closes_their_connections) {
  SilentServer silent;
  auto& c = make_client();
  int calls = 0;
  for (int i = 0; i < 10; ++i) c.request(get(silent.url()), [&](HttpClientResult) { ++calls; });
  for (int i = 0; i < 10; ++i) c.request(get(url("/echo")), [&](HttpClientResult) { ++calls; });
  // Some answered, the silent ones in flight.
  ASSERT_TRUE(run_until([&] { return calls == 10; }));
  client.reset();
  run_for(100ms);
  EXPECT_EQ(calls, 10);
  // The server saw the client's idle connections close.
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (app->connection_count() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(app->connection_count(), 0u);
}

// Requests that time out together finish in one curl_multi_socket_action,
// so their callbacks run one after another from one batch. A loop that is
// busy just before the deadline (the sleep) makes sure they all expire
// before curl's timer is served.
TEST_F(HttpClientTest, a_callback_may_destroy_the_client) {
  SilentServer silent;
  auto& c = make_client();
  int calls = 0;
  for (int i = 0; i < 10; ++i) {
    HttpClientRequest r = get(silent.url());
    r.timeout = 100ms;
    c.request(std::move(r), [&](HttpClientResult) {
      ++calls;
      client.reset();
    });
  }
  loop.add_timer(80ms, [] { std::this_thread::sleep_for(50ms); });
  ASSERT_TRUE(run_until([&] { return calls > 0; }));
  run_for(200ms);
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpClientTest, a_callback_may_cancel_another_request_of_the_same_batch) {
  SilentServer silent;
  auto& c = make_client();
  std::vector<HttpClientError> errors;
  std::vector<HttpClient::RequestId> ids;
  for (int i = 0; i < 10; ++i) {
    HttpClientRequest r = get(silent.url());
    r.timeout = 100ms;
    ids.push_back(c.request(std::move(r), [&](HttpClientResult res) {
      if (errors.empty()) {
        for (auto id : ids) c.cancel(id);
      }
      errors.push_back(res.error);
    }));
  }
  loop.add_timer(80ms, [] { std::this_thread::sleep_for(50ms); });
  ASSERT_TRUE(run_until([&] { return errors.size() == 10; }));
  run_for(50ms);
  ASSERT_EQ(errors.size(), 10u);  // each exactly once: timed out, or cancelled by the first
  EXPECT_EQ(errors[0], HttpClientError::timeout);
  for (size_t i = 1; i < errors.size(); ++i) EXPECT_EQ(errors[i], HttpClientError::cancelled);
}

TEST_F(HttpClientTest, a_throwing_callback_does_not_lose_the_others) {
  auto& c = make_client();
  int calls = 0;
  for (int i = 0; i < 5; ++i) {
    c.request(get(url("/echo")), [&](HttpClientResult) {
      ++calls;
      throw std::runtime_error("callback failed");
    });
  }
  ASSERT_TRUE(run_until([&] { return calls == 5; }));
}

TEST_F(HttpClientTest, ignores_proxy_environment_unless_asked) {
  // A proxy that refuses: a request through it fails with connect_failed.
  std::string proxy = "http://127.0.0.1:" + std::to_string(closed_port());
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::unsetenv("no_proxy");
  ::unsetenv("NO_PROXY");
  std::optional<HttpClientResult> direct, through_env, explicit_proxy;
  {
    auto& c = make_client();
    c.request(get(url("/echo")), [&](HttpClientResult r) { direct = std::move(r); });
    ASSERT_TRUE(run_until([&] { return direct.has_value(); }));
  }
  {
    auto& c = make_client({.proxy_from_environment = true});
    c.request(get(url("/echo")), [&](HttpClientResult r) { through_env = std::move(r); });
    ASSERT_TRUE(run_until([&] { return through_env.has_value(); }));
  }
  ::unsetenv("http_proxy");
  {
    auto& c = make_client({.proxy = proxy});
    c.request(get(url("/echo")), [&](HttpClientResult r) { explicit_proxy = std::move(r); });
    ASSERT_TRUE(run_until([&] { return explicit_proxy.has_value(); }));
  }
  EXPECT_TRUE(direct->ok()) << direct->error_text;
  EXPECT_EQ(through_env->error, HttpClientError::connect_failed) << through_env->error_text;
  EXPECT_EQ(explicit_proxy->error, HttpClientError::connect_failed) << explicit_proxy->error_text;
}

TEST_F(HttpClientTest, sets_the_user_agent_from_options) {
  auto& c = make_client({.user_agent = "hooks/2"});
  std::optional<HttpClientResult> got;
  c.request(get(url("/echo")), [&](HttpClientResult r) { got = std::move(r); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(got->header("x-got-user-agent"), "hooks/2");
}

TEST_F(HttpClientTlsTest, https_to_a_server_signed_by_the_given_ca) {
  auto& c = make_client({.ca_file = ca_file});
  std::optional<HttpClientResult> got;
  HttpClientRequest r = get(tls_url("localhost", "/echo"));
  r.method = "POST";
  r.body = "over tls";
  c.request(std::move(r), [&](HttpClientResult res) { got = std::move(res); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error_text;
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "over tls");
}

TEST_F(HttpClientTlsTest, refuses_a_certificate_it_cannot_verify) {
  std::optional<HttpClientResult> untrusted, wrong_name;
  {
    auto& c = make_client();  // the system's CAs: the test CA is not among them
    c.request(get(tls_url("localhost", "/echo")), [&](HttpClientResult res) { untrusted = std::move(res); });
    ASSERT_TRUE(run_until([&] { return untrusted.has_value(); }));
  }
  {
    auto& c = make_client({.ca_file = ca_file});  // trusted, but issued for localhost only
    c.request(get(tls_url("127.0.0.1", "/echo")), [&](HttpClientResult res) { wrong_name = std::move(res); });
    ASSERT_TRUE(run_until([&] { return wrong_name.has_value(); }));
  }
  EXPECT_EQ(untrusted->error, HttpClientError::tls) << untrusted->error_text;
  EXPECT_EQ(wrong_name->error, HttpClientError::tls) << wrong_name->error_text;
}
