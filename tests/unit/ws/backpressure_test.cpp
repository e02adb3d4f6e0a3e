// SendStatus and on_drain: a client that stops reading turns sends into
// backpressure at the watermark, on_drain follows once it reads again, and
// the slow-consumer cap still drops it past max_send_queue.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <string>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/windlass.hpp"

using namespace std::chrono_literals;
using windlass::SendStatus;
using windlass::test::AppRunner;
using windlass::test::TestClient;
using windlass::test::Waiter;
using Op = windlass::proto::Opcode;

namespace {

// "fill" sends 64 KiB messages until a send is not `queued`, and reports
// how many went and what stopped it; on_drain says "drained".
class Producer final : public windlass::MessageComponent {
 public:
  explicit Producer(Waiter& w) : waiter(w) {}
  void on_open(windlass::Connection& c) override { waiter.update([&] { conn = c; }); }
  void on_message(windlass::Connection& c, const windlass::Message& m) override {
    if (m.data != "fill") return;
    std::string big(64 * 1024, 'x');
    int n = 0;
    SendStatus s = SendStatus::queued;
    while (s == SendStatus::queued && n < 10000) {
      s = c.send(big);
      ++n;
    }
    const size_t buffered = c.buffered_amount();
    waiter.update([&] {
      sent = n;
      stopped_by = s;
      buffered_at_stop = buffered;
    });
  }
  void on_drain(windlass::Connection& c) override {
    waiter.update([&] { ++drains; });
    c.send("drained");
  }
  void on_close(windlass::Connection&, const windlass::CloseInfo& i) override {
    waiter.update([&] { closed_cause = i.cause; ++closes; });
  }
  Waiter& waiter;
  windlass::Connection conn;
  int sent = 0;
  size_t buffered_at_stop = 0;
  SendStatus stopped_by = SendStatus::queued;
  int drains = 0;
  int closes = 0;
  windlass::CloseCause closed_cause{};
};

TEST(Backpressure, a_send_over_the_watermark_says_so_and_on_drain_follows) {
  Waiter w;
  auto so = windlass::test::test_options(1);
  AppRunner r(so);
  auto p = std::make_shared<Producer>(w);
  windlass::WsOptions wo;
  wo.send_watermark = 256 * 1024;
  r.app->route("/", p, wo);
  r.start();
  TestClient c(r.port);
  // A small receive buffer, so the kernel stops taking bytes early.
  int small = 16 * 1024;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  c.handshake("/");
  c.send_frame(Op::text, "fill");
  ASSERT_TRUE(w.wait([&] { return p->sent > 0; }));
  EXPECT_EQ(p->stopped_by, SendStatus::backpressure);
  EXPECT_GT(p->buffered_at_stop, wo.send_watermark);
  // Once the queue falls under the watermark (the kernel may take much of
  // it at once): one on_drain, and its message arrives after the others.
  bool saw_drained = false;
  for (int i = 0; i < p->sent + 10 && !saw_drained; ++i) {
    auto f = c.read_frame(5000);
    ASSERT_TRUE(f);
    saw_drained = f->payload == "drained";
  }
  EXPECT_TRUE(saw_drained);
  EXPECT_EQ(r.on_loop([&] { return p->drains; }), 1);  // read on the loop that writes it (TSan)
  EXPECT_EQ(r.on_loop([&] { return p->conn.buffered_amount(); }), 0u);
}

TEST(Backpressure, past_max_send_queue_a_send_is_dropped_and_the_client_closed) {
  Waiter w;
  auto so = windlass::test::test_options(1);
  so.max_send_queue = 1 << 20;
  AppRunner r(so);
  auto p = std::make_shared<Producer>(w);
  windlass::WsOptions wo;
  wo.send_watermark = 2 << 20;  // above the cap: only the cap stops it
  r.app->route("/", p, wo);
  r.start();
  TestClient c(r.port);
  int small = 16 * 1024;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  c.handshake("/");
  c.send_frame(Op::text, "fill");
  ASSERT_TRUE(w.wait([&] { return p->sent > 0 && p->closes == 1; }));
  EXPECT_EQ(p->stopped_by, SendStatus::dropped);
  EXPECT_EQ(p->closed_cause, windlass::CloseCause::slow_consumer);
  EXPECT_EQ(r.on_loop([&] { return p->conn.send("after"); }), SendStatus::closed);
  EXPECT_FALSE(p->conn.is_open());
}

}  // namespace
