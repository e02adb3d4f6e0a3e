// History and recovery (history.hpp): the in-memory log's rules, and the
// local broker's subscribe_from — a subscriber that comes back from its
// last offset gets every message it missed exactly once and in order,
// while messages keep being published from another thread, with the
// history in this process or in a source outside it (a bridge's).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "unit/ws/app_runner.hpp"
#include "unit/ws/test_client.hpp"
#include "windlass/windlass.hpp"
#include "ws/history_log.hpp"

using namespace std::chrono_literals;
using windlass::HistoryOptions;
using windlass::RecoveryOutcome;
using windlass::StreamOffset;
using windlass::detail::HistoryLog;
using windlass::test::AppRunner;
using windlass::test::TestClient;
using Op = windlass::proto::Opcode;

namespace {

HistoryOptions bounds(size_t n, std::chrono::milliseconds age = 60s) {
  HistoryOptions h;
  h.max_messages = n;
  h.max_age = age;
  return h;
}

TEST(StreamOffset, parses_what_it_prints_and_nothing_else) {
  auto o = StreamOffset::parse("1700000000123-7");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->ms, 1700000000123u);
  EXPECT_EQ(o->seq, 7u);
  EXPECT_EQ(o->str(), "1700000000123-7");
  EXPECT_EQ(StreamOffset{}.str(), "0-0");
  EXPECT_EQ((StreamOffset{5, UINT64_MAX}.next()), (StreamOffset{6, 0}));
  for (const char* bad : {"", "-", "1-", "-1", "1", "1-2-3", "a-1", "1-b", " 1-2", "1-2 ", "+1-2",
                          "99999999999999999999999-0", "1--2"}) {
    EXPECT_FALSE(StreamOffset::parse(bad)) << bad;
  }
  EXPECT_LT((StreamOffset{1, 9}), (StreamOffset{2, 0}));
  EXPECT_LT((StreamOffset{2, 0}), (StreamOffset{2, 1}));
}

TEST(HistoryLog, gives_increasing_offsets_even_when_the_clock_goes_back) {
  HistoryLog log(1000);
  EXPECT_EQ(log.position(), (StreamOffset{1000, 0}));
  auto h = bounds(10);
  EXPECT_EQ(log.append(windlass::MessageKind::text, "a", 1000, h), (StreamOffset{1000, 1}));
  EXPECT_EQ(log.append(windlass::MessageKind::text, "b", 1005, h), (StreamOffset{1005, 0}));
  EXPECT_EQ(log.append(windlass::MessageKind::text, "c", 990, h), (StreamOffset{1005, 1}));
}

TEST(HistoryLog, answers_each_kind_of_return) {
  auto h = bounds(3);
  HistoryLog log(1000);
  const StreamOffset start = log.position();
  std::vector<StreamOffset> o;
  for (int i = 0; i < 5; ++i) o.push_back(log.append(windlass::MessageKind::text, "m" + std::to_string(i), 1001 + static_cast<uint64_t>(i), h));
  EXPECT_EQ(log.size(), 3u);  // m2, m3, m4

  auto fresh = log.read(std::nullopt, 1010, h);
  EXPECT_EQ(fresh.outcome, RecoveryOutcome::fresh);
  EXPECT_EQ(fresh.position, o[4]);
  EXPECT_TRUE(fresh.missed.empty());

  // From m1 (the newest one dropped): m2..m4 are all there.
  auto back = log.read(o[1], 1010, h);
  EXPECT_EQ(back.outcome, RecoveryOutcome::recovered);
  ASSERT_EQ(back.missed.size(), 3u);
  EXPECT_EQ(back.missed[0].payload, "m2");
  EXPECT_EQ(back.missed[2].offset, o[4]);
  // From m0: m1 is gone.
  EXPECT_EQ(log.read(o[0], 1010, h).outcome, RecoveryOutcome::too_old);
  EXPECT_EQ(log.read(start, 1010, h).outcome, RecoveryOutcome::too_old);
  // Up to date: recovered, nothing to send.
  auto current = log.read(o[4], 1010, h);
  EXPECT_EQ(current.outcome, RecoveryOutcome::recovered);
  EXPECT_TRUE(current.missed.empty());
  // Ahead of the log: not one of its offsets.
  EXPECT_EQ(log.read(o[4].next(), 1010, h).outcome, RecoveryOutcome::invalid_offset);
}

TEST(HistoryLog, drops_what_is_older_than_max_age) {
  auto h = bounds(100, 50ms);
  HistoryLog log(1000);
  const StreamOffset a = log.append(windlass::MessageKind::text, "old", 1000, h);
  const StreamOffset b = log.append(windlass::MessageKind::text, "new", 1040, h);
  auto r = log.read(a, 1060, h);  // "old" is 60 ms old now
  EXPECT_EQ(r.outcome, RecoveryOutcome::recovered);  // from a: what followed it (b) is kept
  ASSERT_EQ(r.missed.size(), 1u);
  EXPECT_EQ(r.missed[0].offset, b);
  EXPECT_EQ(log.read(log.read(std::nullopt, 1060, h).position, 1200, h).missed.size(), 0u);
  EXPECT_EQ(log.size(), 0u);
  // A subscriber that had nothing yet when the log began missed "old": gone.
  EXPECT_EQ(log.read(StreamOffset{1000, 0}, 1200, h).outcome, RecoveryOutcome::too_old);
}

// "from:<offset>" (re)subscribes to h:room from that offset ("from:" for a
// fresh subscription) and answers "recovery <outcome> <position> <missed>"
// before the missed messages; every message of h:room reaches the client
// as "<offset> <payload>".
class HistoryRoom final : public windlass::MessageComponent {
 public:
  explicit HistoryRoom(windlass::App& app) : app_(app) {}
  void on_message(windlass::Connection& c, const windlass::Message& m) override {
    std::string_view d = m.data;
    if (d.starts_with("from:")) {
      const bool ok = app_.broker().subscribe_from(c, topic_of(d), offset_of(d), [c](const windlass::Recovery& r) {
        c.send("recovery " + std::string(windlass::describe(r.outcome)) + " " + r.position + " " +
               std::to_string(r.missed));
      });
      if (!ok) c.send("refused");
    }
    if (d == "unsub") c.unsubscribe("h:room");
  }
  // "from:<offset>" or "from:<offset>@<topic>"
  static std::string topic_of(std::string_view d) {
    const size_t at = d.find('@');
    return at == std::string_view::npos ? "h:room" : std::string(d.substr(at + 1));
  }
  static std::string offset_of(std::string_view d) {
    d.remove_prefix(5);
    return std::string(d.substr(0, d.find('@')));
  }

 private:
  windlass::App& app_;
};

HistoryOptions stamped(size_t n) {
  HistoryOptions h = bounds(n);
  h.stamp = [](std::string_view payload, std::string_view offset) {
    return std::string(offset.empty() ? "-" : offset) + " " + std::string(payload);
  };
  return h;
}

struct Line {
  std::string offset, payload;
};
Line split(const std::string& s) {
  const size_t sp = s.find(' ');
  return {s.substr(0, sp), s.substr(sp + 1)};
}

// Reads "recovery ..." and returns its words.
std::vector<std::string> read_recovery(TestClient& c) {
  auto f = c.read_frame();
  EXPECT_TRUE(f);
  if (!f) return {};
  std::vector<std::string> words;
  std::string_view s = f->payload;
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    words.emplace_back(s.substr(0, sp));
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  }
  if (words.size() == 3) words.emplace_back("");  // no position: "recovery unavailable  0"
  EXPECT_EQ(words.size(), 4u) << f->payload;
  EXPECT_EQ(words.empty() ? "" : words[0], "recovery");
  return words;
}

TEST(History, a_subscriber_back_from_its_offset_gets_every_message_once_in_order_during_a_burst) {
  AppRunner r(windlass::test::test_options(2));
  r.app->broker().keep_history("h:", stamped(2000));
  r.app->route("/", std::make_shared<HistoryRoom>(*r.app));
  r.start();

  auto first = std::make_unique<TestClient>(r.port);
  ASSERT_EQ(first->handshake("/").substr(0, 12), "HTTP/1.1 101");
  first->send_frame(Op::text, "from:");
  auto w = read_recovery(*first);
  ASSERT_EQ(w[1], "fresh");
  ASSERT_TRUE(StreamOffset::parse(w[2])) << w[2];

  constexpr int kMessages = 1000;
  std::atomic<int> published{0};
  std::thread publisher([&] {
    for (int i = 0; i < kMessages; ++i) {
      r.app->broker().publish("h:room", windlass::Message{windlass::MessageKind::text, "m" + std::to_string(i)});
      published.store(i + 1);
      if (i % 10 == 0) std::this_thread::sleep_for(1ms);
    }
  });
  // The first connection takes 150 messages and goes away mid-burst.
  std::string last;
  for (int i = 0; i < 150; ++i) {
    auto f = first->read_frame();
    ASSERT_TRUE(f) << i;
    Line l = split(f->payload);
    ASSERT_EQ(l.payload, "m" + std::to_string(i));
    last = l.offset;
  }
  first.reset();
  // Back on a new connection (either loop), from the last offset it saw.
  TestClient second(r.port);
  ASSERT_EQ(second.handshake("/").substr(0, 12), "HTTP/1.1 101");
  second.send_frame(Op::text, "from:" + last);
  w = read_recovery(second);
  ASSERT_EQ(w[1], "recovered");
  int next = 150;
  StreamOffset previous = *StreamOffset::parse(last);
  while (next < kMessages) {
    auto f = second.read_frame();
    ASSERT_TRUE(f) << "after m" << next - 1;
    Line l = split(f->payload);
    ASSERT_EQ(l.payload, "m" + std::to_string(next)) << "a gap or a duplicate";
    auto o = StreamOffset::parse(l.offset);
    ASSERT_TRUE(o);
    EXPECT_GT(*o, previous);
    previous = *o;
    ++next;
  }
  publisher.join();
  EXPECT_FALSE(second.read_frame(200)) << "nothing more, and nothing twice";
}

TEST(History, says_too_old_invalid_and_no_history) {
  AppRunner r(windlass::test::test_options(1));
  r.app->broker().keep_history("h:", stamped(5));
  r.app->broker().keep_history("h:none:", bounds(0));  // a longer prefix turns it off
  r.app->route("/", std::make_shared<HistoryRoom>(*r.app));
  r.start();
  TestClient c(r.port);
  ASSERT_EQ(c.handshake("/").substr(0, 12), "HTTP/1.1 101");
  c.send_frame(Op::text, "from:");
  auto w = read_recovery(c);
  const std::string start = w[2];
  for (int i = 0; i < 8; ++i) {
    r.app->broker().publish("h:room", windlass::Message{windlass::MessageKind::text, "m" + std::to_string(i)});
  }
  std::vector<std::string> offsets;
  for (int i = 0; i < 8; ++i) offsets.push_back(split(c.read_frame()->payload).offset);
  c.send_frame(Op::text, "unsub");

  // From the start: m0..m2 are gone (5 kept).
  c.send_frame(Op::text, "from:" + start);
  w = read_recovery(c);
  EXPECT_EQ(w[1], "too_old");
  EXPECT_EQ(w[2], offsets.back()) << "live from the newest offset";
  EXPECT_EQ(w[3], "0");
  EXPECT_FALSE(c.read_frame(200)) << "nothing replayed";
  c.send_frame(Op::text, "unsub");
  // From m2: m3..m7 follow.
  c.send_frame(Op::text, "from:" + offsets[2]);
  w = read_recovery(c);
  EXPECT_EQ(w[1], "recovered");
  EXPECT_EQ(w[3], "5");
  for (int i = 3; i < 8; ++i) EXPECT_EQ(split(c.read_frame()->payload).payload, "m" + std::to_string(i));
  c.send_frame(Op::text, "unsub");
  for (const char* bad : {"nonsense", "99999999999999-0"}) {
    c.send_frame(Op::text, std::string("from:") + bad);
    w = read_recovery(c);
    EXPECT_EQ(w[1], "invalid_offset") << bad;
    EXPECT_EQ(w[2], offsets.back());
    c.send_frame(Op::text, "unsub");
  }
  // Twice on one topic: refused, as subscribe() is.
  c.send_frame(Op::text, "from:");
  read_recovery(c);
  c.send_frame(Op::text, "from:");
  EXPECT_EQ(c.read_frame()->payload, "refused");
  // No history: a plain subscription.
  c.send_frame(Op::text, "from:@plain");
  w = read_recovery(c);
  EXPECT_EQ(w[1], "no_history");
  c.send_frame(Op::text, "from:" + offsets[0] + "@h:none:x");
  w = read_recovery(c);
  EXPECT_EQ(w[1], "no_history");
  r.app->publish("h:none:x", "unstamped");
  EXPECT_EQ(c.read_frame()->payload, "unstamped");
}

// A history kept outside the process, as a bridge keeps it: reads answer
// late, from another thread, while live messages (with the source's
// offsets) keep coming.
class SlowSource final : public windlass::HistorySource {
 public:
  void read_history(std::string, std::optional<StreamOffset> since, const HistoryOptions&,
                    std::function<void(windlass::HistoryRead)> done) override {
    std::lock_guard lock(mu);
    windlass::HistoryRead r;
    if (unavailable) {
      r.outcome = RecoveryOutcome::unavailable;
    } else {
      r.outcome = since ? RecoveryOutcome::recovered : RecoveryOutcome::fresh;
      r.position = StreamOffset{1, static_cast<uint64_t>(stored.size())};
      for (size_t i = 0; i < stored.size(); ++i) {
        if (since && StreamOffset{1, i + 1} > *since) {
          r.missed.push_back({StreamOffset{1, i + 1}, windlass::MessageKind::text, stored[i]});
        }
      }
    }
    threads.emplace_back([r = std::move(r), done = std::move(done)]() mutable {
      std::this_thread::sleep_for(150ms);
      done(std::move(r));
    });
  }
  ~SlowSource() override {
    for (auto& t : threads) t.join();
  }
  std::mutex mu;
  std::vector<std::string> stored;  // offset 1-(i+1)
  bool unavailable = false;
  std::vector<std::thread> threads;
};

TEST(History, a_source_outside_the_process_holds_live_messages_until_its_read_and_drops_the_overlap) {
  AppRunner r(windlass::test::test_options(2));
  SlowSource source;
  r.app->broker().keep_history("h:", stamped(100));
  r.app->broker().set_history_source(&source);
  r.app->route("/", std::make_shared<HistoryRoom>(*r.app));
  r.start();
  // What the "bridge" delivers: the source's offsets, in its order.
  auto deliver = [&](int i) {
    std::string payload = "m" + std::to_string(i);
    std::string offset;
    {
      std::lock_guard lock(source.mu);
      source.stored.push_back(payload);
      offset = StreamOffset{1, source.stored.size()}.str();
    }
    r.app->broker().publish("h:room", windlass::Message{windlass::MessageKind::text, payload},
                            windlass::PublishOptions{.origin = 7, .offset = offset});
  };
  for (int i = 0; i < 10; ++i) deliver(i);
  TestClient c(r.port);
  ASSERT_EQ(c.handshake("/").substr(0, 12), "HTTP/1.1 101");
  c.send_frame(Op::text, "from:1-4");  // it has m0..m3
  // While the read is under way, m10..m14 arrive live; the read holds m0..m14
  // or fewer, depending on when it looked: here it looked at once (m0..m9).
  std::this_thread::sleep_for(30ms);
  for (int i = 10; i < 15; ++i) deliver(i);
  auto w = read_recovery(c);
  EXPECT_EQ(w[1], "recovered");
  EXPECT_EQ(w[2], "1-10");
  for (int i = 4; i < 15; ++i) {
    auto f = c.read_frame();
    ASSERT_TRUE(f) << i;
    EXPECT_EQ(f->payload, (StreamOffset{1, static_cast<uint64_t>(i + 1)}.str() + " m" + std::to_string(i)));
  }
  // A late duplicate of what the read gave (a bridge may see it after the
  // read's reply) is dropped; the next new one goes through.
  r.app->broker().publish("h:room", windlass::Message{windlass::MessageKind::text, "m9 again"},
                          windlass::PublishOptions{.origin = 7, .offset = "1-10"});
  deliver(15);
  EXPECT_EQ(c.read_frame()->payload, "1-16 m15");
  EXPECT_FALSE(c.read_frame(200));
  // What is delivered without an offset (the source cut off) still arrives, unstamped.
  r.app->broker().publish("h:room", windlass::Message{windlass::MessageKind::text, "split"},
                          windlass::PublishOptions{.origin = 7});
  EXPECT_EQ(c.read_frame()->payload, "- split");
  // The source away: live only, no position.
  {
    std::lock_guard lock(source.mu);
    source.unavailable = true;
  }
  TestClient d(r.port);
  ASSERT_EQ(d.handshake("/").substr(0, 12), "HTTP/1.1 101");
  d.send_frame(Op::text, "from:1-2");
  std::this_thread::sleep_for(30ms);
  deliver(16);
  w = read_recovery(d);
  EXPECT_EQ(w[1], "unavailable");
  EXPECT_EQ(w[2], "");
  EXPECT_EQ(d.read_frame()->payload, "1-17 m16") << "held while the read was under way, then sent";
  EXPECT_EQ(c.read_frame()->payload, "1-17 m16");
}

TEST(History, a_client_that_leaves_while_its_history_is_read_costs_nothing) {
  AppRunner r(windlass::test::test_options(1));
  SlowSource source;
  r.app->broker().keep_history("h:", stamped(100));
  r.app->broker().set_history_source(&source);
  r.app->route("/", std::make_shared<HistoryRoom>(*r.app));
  r.start();
  {
    TestClient c(r.port);
    ASSERT_EQ(c.handshake("/").substr(0, 12), "HTTP/1.1 101");
    c.send_frame(Op::text, "from:");
  }
  TestClient c2(r.port);
  ASSERT_EQ(c2.handshake("/").substr(0, 12), "HTTP/1.1 101");
  c2.send_frame(Op::text, "from:");
  c2.send_frame(Op::text, "unsub");
  std::this_thread::sleep_for(300ms);  // both reads answer after the fact
  EXPECT_FALSE(c2.read_frame(100)) << "no answer for a subscription that is gone";
  EXPECT_EQ(r.app->broker().subscriber_count("h:room"), 0u);
}

}  // namespace
