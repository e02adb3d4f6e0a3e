// Asynchronous HTTP answers (App::http_async): answered from another
// thread, pipelined requests answered in order, and the deadline.
#include <gtest/gtest.h>

#include <thread>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/windlass.hpp"

using namespace std::chrono_literals;
using windlass::test::AppRunner;
using windlass::test::TestClient;

namespace {

TEST(AsyncHttp, answers_from_another_thread_and_keeps_pipelined_requests_in_order) {
  AppRunner r;
  r.app->http_async("/slow/:n", [](const windlass::Request& req, windlass::HttpResponder res) {
    std::string n(*req.param("n"));
    std::thread([res, n] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30 * (3 - std::stoi(n))));
      res.send(windlass::Response::text(200, "slow " + n));
    }).detach();
  });
  r.app->http("/fast", [](const windlass::Request&, windlass::Response& res) {
    res = windlass::Response::text(200, "fast");
  });
  r.start();
  TestClient c(r.port);
  c.write_raw(
      "GET /slow/1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /slow/2 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /slow/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string all = c.read_until_eof(5000);
  size_t a = all.find("slow 1"), b = all.find("slow 2"), f = all.find("fast"), d = all.find("slow 3");
  ASSERT_NE(a, std::string::npos) << all;
  ASSERT_NE(b, std::string::npos) << all;
  ASSERT_NE(f, std::string::npos) << all;
  ASSERT_NE(d, std::string::npos) << all;
  EXPECT_LT(a, b);
  EXPECT_LT(b, f);
  EXPECT_LT(f, d);
}

TEST(AsyncHttp, an_answer_that_never_comes_is_a_504_and_a_late_one_is_dropped) {
  auto so = windlass::test::test_options();
  so.async_response_timeout = 200ms;
  AppRunner r(so);
  windlass::HttpResponder kept;
  std::mutex m;
  r.app->http_async("/never", [&](const windlass::Request&, windlass::HttpResponder res) {
    std::lock_guard lock(m);
    kept = res;
  });
  r.start();
  TestClient c(r.port);
  EXPECT_EQ(c.request("GET /never HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 12), "HTTP/1.1 504");
  std::lock_guard lock(m);
  EXPECT_TRUE(kept.send(windlass::Response::text(200, "too late")));  // claimed, but goes nowhere
  EXPECT_FALSE(kept.send(windlass::Response::text(200, "twice")));
}

TEST(AsyncHttp, an_inline_answer_works_like_a_plain_handler) {
  AppRunner r;
  r.app->http_async("/now", [](const windlass::Request& req, windlass::HttpResponder res) {
    res.send(windlass::Response::json(200, "{\"path\":\"" + std::string(req.path) + "\"}"));
  });
  r.start();
  TestClient c(r.port);
  std::string head = c.request("GET /now HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 200");
  EXPECT_NE(head.find("Content-Type: application/json"), std::string::npos) << head;
  EXPECT_EQ(c.read_until_eof(), "{\"path\":\"/now\"}");
}

TEST(HttpRoutes, patterns_capture_parameters_for_plain_handlers) {
  AppRunner r;
  r.app->http("/apps/:id/channels/:name", [](const windlass::Request& req, windlass::Response& res) {
    res = windlass::Response::text(200, std::string(*req.param("id")) + "/" + std::string(*req.param("name")));
  });
  EXPECT_THROW(r.app->http("/apps/:id/channels/:name", {}), std::invalid_argument);
  EXPECT_THROW(r.app->http("no-slash", {}), std::invalid_argument);
  r.start();
  TestClient c(r.port);
  c.request("GET /apps/3/channels/presence-x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(c.read_until_eof(), "3/presence-x");
  TestClient d(r.port);
  EXPECT_EQ(d.request("GET /apps/3/channels HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 12), "HTTP/1.1 404");
}

}  // namespace
