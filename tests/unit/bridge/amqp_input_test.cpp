// The AMQP input's pure parts — URL parsing, option validation, the
// redelivery ledger, the backoff — and its thread's life against a port
// where no broker listens. What it does with a real broker is
// tests/integration/amqp_input_test.py's.
#include "bridge/amqp_input.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "windlass/amqp.hpp"
#include "windlass/loop.hpp"

using namespace std::chrono_literals;
using windlass::AmqpOptions;
using windlass::AmqpUrl;
using windlass::AmqpUrlError;
using windlass::parse_amqp_url;
using windlass::detail::AmqpClock;
using windlass::detail::RedeliveryLedger;

namespace {

AmqpUrl parse_ok(std::string_view text) {
  AmqpUrl u;
  EXPECT_EQ(parse_amqp_url(text, u), AmqpUrlError::none) << text;
  return u;
}

AmqpUrlError parse_error(std::string_view text) {
  AmqpUrl u;
  u.host = "unchanged";
  AmqpUrlError e = parse_amqp_url(text, u);
  EXPECT_EQ(u.host, "unchanged") << "a failed parse must leave its output alone: " << text;
  return e;
}

AmqpOptions valid_options() {
  AmqpOptions o;
  o.node_id = "test";
  return o;
}

// ---------------------------------------------------------------------------
// URLs

TEST(AmqpUrl, takes_every_part) {
  AmqpUrl u = parse_ok("amqp://user:secret@broker.example:5673/events");
  EXPECT_EQ(u.user, "user");
  EXPECT_EQ(u.password, "secret");
  EXPECT_EQ(u.host, "broker.example");
  EXPECT_EQ(u.port, 5673);
  EXPECT_EQ(u.vhost, "events");
}

TEST(AmqpUrl, fills_what_is_left_out_with_the_spec_defaults) {
  AmqpUrl u = parse_ok("amqp://");
  EXPECT_EQ(u.host, "localhost");
  EXPECT_EQ(u.port, 5672);
  EXPECT_EQ(u.user, "guest");
  EXPECT_EQ(u.password, "guest");
  EXPECT_EQ(u.vhost, "/");
  EXPECT_EQ(parse_ok("amqp://rabbit").host, "rabbit");
  EXPECT_EQ(parse_ok("amqp://rabbit").vhost, "/");
  EXPECT_EQ(parse_ok("amqp://rabbit:1234").port, 1234);
  // A user without a password keeps the default password, as librabbitmq's own parser does.
  AmqpUrl v = parse_ok("amqp://alice@rabbit");
  EXPECT_EQ(v.user, "alice");
  EXPECT_EQ(v.password, "guest");
  EXPECT_EQ(parse_ok("amqp://alice:@rabbit").password, "");
}

TEST(AmqpUrl, decodes_percent_escapes) {
  AmqpUrl u = parse_ok("amqp://us%40er:p%3As%2Fs@rabbit/%2f");
  EXPECT_EQ(u.user, "us@er");
  EXPECT_EQ(u.password, "p:s/s");
  EXPECT_EQ(u.vhost, "/");
  EXPECT_EQ(parse_ok("amqp://rabbit/a%2Fb").vhost, "a/b");
  // The last '@' ends the user info: an unencoded '@' in a password still works.
  EXPECT_EQ(parse_ok("amqp://u:p@ss@rabbit").password, "p@ss");
}

TEST(AmqpUrl, takes_bracketed_ipv6_hosts) {
  AmqpUrl u = parse_ok("amqp://[::1]:5673/v");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 5673);
  EXPECT_EQ(parse_ok("amqp://[fe80::1]").port, 5672);
  EXPECT_EQ(parse_error("amqp://[::1/v"), AmqpUrlError::bad_host);
  EXPECT_EQ(parse_error("amqp://[]:5672"), AmqpUrlError::bad_host);
  EXPECT_EQ(parse_error("amqp://[::1]x"), AmqpUrlError::bad_host);
}

TEST(AmqpUrl, scheme_is_case_insensitive) {
  EXPECT_EQ(parse_ok("AMQP://rabbit").host, "rabbit");
}

TEST(AmqpUrl, refuses_each_mistake_with_its_own_error) {
  EXPECT_EQ(parse_error(""), AmqpUrlError::empty);
  EXPECT_EQ(parse_error("http://rabbit"), AmqpUrlError::bad_scheme);
  EXPECT_EQ(parse_error("rabbit:5672"), AmqpUrlError::bad_scheme);
  EXPECT_EQ(parse_error("amqps://rabbit"), AmqpUrlError::tls_unsupported);
  EXPECT_EQ(parse_error("amqp://rab bit"), AmqpUrlError::bad_character);
  EXPECT_EQ(parse_error("amqp://rabbit/v#frag"), AmqpUrlError::bad_character);
  EXPECT_EQ(parse_error("amqp://rabbit\n"), AmqpUrlError::bad_character);
  EXPECT_EQ(parse_error("amqp://u:%zz@rabbit"), AmqpUrlError::bad_escape);
  EXPECT_EQ(parse_error("amqp://rabbit/%2"), AmqpUrlError::bad_escape);
  EXPECT_EQ(parse_error("amqp://rabbit/%00"), AmqpUrlError::bad_escape);
  EXPECT_EQ(parse_error("amqp://rabbit:"), AmqpUrlError::bad_port);
  EXPECT_EQ(parse_error("amqp://rabbit:0"), AmqpUrlError::bad_port);
  EXPECT_EQ(parse_error("amqp://rabbit:65536"), AmqpUrlError::bad_port);
  EXPECT_EQ(parse_error("amqp://rabbit:99999999999"), AmqpUrlError::bad_port);
  EXPECT_EQ(parse_error("amqp://rabbit:56x"), AmqpUrlError::bad_port);
  EXPECT_EQ(parse_error("amqp://rabbit/"), AmqpUrlError::empty_vhost);
  EXPECT_EQ(parse_error("amqp://rabbit/a/b"), AmqpUrlError::slash_in_vhost);
  EXPECT_EQ(parse_error("amqp://rabbit/?heartbeat=10"), AmqpUrlError::has_query);
}

TEST(AmqpUrl, every_error_has_a_sentence) {
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(AmqpUrlError::has_query); ++i) {
    std::string text = windlass::describe(static_cast<AmqpUrlError>(i));
    EXPECT_FALSE(text.empty());
    EXPECT_TRUE(seen.insert(text).second) << "two errors say the same: " << text;
  }
  EXPECT_NE(std::string(windlass::describe(AmqpUrlError::empty_vhost)).find("%2f"), std::string::npos);
}

TEST(AmqpUrl, redacted_leaves_out_the_password_and_encodes_the_vhost) {
  AmqpUrl u = parse_ok("amqp://app:hunter2@rabbit:5673/%2f");
  EXPECT_EQ(u.redacted(), "amqp://app@rabbit:5673/%2F");
  EXPECT_EQ(parse_ok("amqp://[::1]").redacted(), "amqp://guest@[::1]:5672/%2F");
  // What redacted() writes parses back to the same place.
  AmqpUrl back = parse_ok(parse_ok("amqp://a%40b:x@h:1/v%20w").redacted());
  EXPECT_EQ(back.user, "a@b");
  EXPECT_EQ(back.vhost, "v w");
}

// ---------------------------------------------------------------------------
// Options

TEST(AmqpOptions, defaults_are_valid_given_a_node_id) {
  EXPECT_EQ(windlass::validate(valid_options()), "");
  AmqpOptions o;
  EXPECT_NE(windlass::validate(o).find("node_id"), std::string::npos) << "no queue and no node id";
  o.queue = "mine";
  EXPECT_EQ(windlass::validate(o), "");
}

TEST(AmqpOptions, names_the_option_at_fault) {
  struct Case {
    void (*change)(AmqpOptions&);
    const char* starts;
  } cases[] = {
      {[](AmqpOptions& o) { o.url = "amqps://x"; }, "url: "},
      {[](AmqpOptions& o) { o.exchange = ""; }, "exchange "},
      {[](AmqpOptions& o) { o.exchange = "amq.topic"; }, "exchange "},
      {[](AmqpOptions& o) { o.exchange = std::string(256, 'x'); }, "exchange "},
      {[](AmqpOptions& o) { o.exchange = "a\nb"; }, "exchange "},
      {[](AmqpOptions& o) { o.exchange_type = "headers"; }, "exchange_type "},
      {[](AmqpOptions& o) { o.queue = "amq.gen-1"; }, "queue "},
      {[](AmqpOptions& o) { o.node_id = std::string(250, 'n'); }, "queue "},
      {[](AmqpOptions& o) { o.binding_keys.clear(); }, "binding_keys: "},
      {[](AmqpOptions& o) { o.binding_keys = {std::string(300, 'k')}; }, "binding_keys: "},
      {[](AmqpOptions& o) { o.prefetch = 0; }, "prefetch: "},
      {[](AmqpOptions& o) { o.max_message_size = 0; }, "max_message_size: "},
      {[](AmqpOptions& o) { o.heartbeat = 70000s; }, "heartbeat: "},
      {[](AmqpOptions& o) { o.connect_timeout = 0ms; }, "connect_timeout: "},
      {[](AmqpOptions& o) { o.rpc_timeout = -1ms; }, "rpc_timeout: "},
      {[](AmqpOptions& o) { o.backoff_initial = 0ms; }, "backoff_initial: "},
      {[](AmqpOptions& o) { o.backoff_max = 100ms; }, "backoff_max: "},
      {[](AmqpOptions& o) { o.redelivery_window = -1ms; }, "redelivery_window: "},
  };
  for (const Case& c : cases) {
    AmqpOptions o = valid_options();
    c.change(o);
    std::string why = windlass::validate(o);
    EXPECT_TRUE(why.starts_with(c.starts)) << "expected \"" << c.starts << "...\", got \"" << why << "\"";
  }
}

TEST(AmqpOptions, other_exchange_types_and_an_empty_binding_key_are_fine) {
  for (const char* type : {"topic", "direct", "fanout"}) {
    AmqpOptions o = valid_options();
    o.exchange_type = type;
    o.binding_keys = {"", "private-orders.*"};
    EXPECT_EQ(windlass::validate(o), "") << type;
  }
}

TEST(AmqpOptions, name_problem_says_why) {
  EXPECT_EQ(windlass::amqp_name_problem("windlass"), "");
  EXPECT_EQ(windlass::amqp_name_problem(std::string(255, 'x')), "");
  EXPECT_NE(windlass::amqp_name_problem(""), "");
  EXPECT_NE(windlass::amqp_name_problem("amq.direct").find("reserves"), std::string::npos);
  EXPECT_NE(windlass::amqp_name_problem("a\x7f"), "");
}

TEST(AmqpInput, constructor_refuses_bad_options_with_the_reason) {
  windlass::Loop loop;
  AmqpOptions o = valid_options();
  o.url = "amqp://rabbit/";
  try {
    windlass::AmqpInput input(loop, o, [](std::string_view, std::string_view) { return true; });
    FAIL() << "accepted an empty vhost";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("%2f"), std::string::npos) << e.what();
  }
  EXPECT_THROW(windlass::AmqpInput(loop, valid_options(), nullptr), std::invalid_argument);
}

TEST(AmqpInput, derives_its_queue_and_hides_the_password) {
  windlass::Loop loop;
  AmqpOptions o = valid_options();
  o.url = "amqp://app:hunter2@127.0.0.1:1/%2f";
  windlass::AmqpInput input(loop, o, [](std::string_view, std::string_view) { return true; });
  EXPECT_EQ(input.queue(), "windlass.test");
  EXPECT_EQ(input.url(), "amqp://app@127.0.0.1:1/%2F");
  o.queue = "explicit";
  windlass::AmqpInput named(loop, o, [](std::string_view, std::string_view) { return true; });
  EXPECT_EQ(named.queue(), "explicit");
}

// ---------------------------------------------------------------------------
// The ledger

const AmqpClock::time_point t0 = AmqpClock::time_point() + 1h;

TEST(RedeliveryLedger, a_first_delivery_is_never_a_duplicate) {
  RedeliveryLedger l(100, 60s);
  l.acked(7);
  l.connection_lost();
  l.connected(t0);
  EXPECT_FALSE(l.take_duplicate(7, false, t0)) << "not flagged redelivered: it cannot have been handed over";
  EXPECT_TRUE(l.take_duplicate(7, true, t0));
}

TEST(RedeliveryLedger, confirmed_acks_are_forgotten) {
  RedeliveryLedger l(100, 60s);
  l.acked(1);
  l.acked(2);
  l.acked(3);
  EXPECT_EQ(l.unconfirmed(), 3u);
  l.confirmed(2);  // the reply to a method sent after 1 and 2, before 3
  EXPECT_EQ(l.unconfirmed(), 1u);
  l.connection_lost();
  l.connected(t0);
  EXPECT_EQ(l.candidates(), 1u);
  EXPECT_FALSE(l.take_duplicate(1, true, t0));
  EXPECT_FALSE(l.take_duplicate(2, true, t0));
  EXPECT_TRUE(l.take_duplicate(3, true, t0));
  l.confirmed(5);  // more than there are: no harm
  EXPECT_EQ(l.unconfirmed(), 0u);
}

TEST(RedeliveryLedger, handed_over_without_ack_is_a_candidate) {
  RedeliveryLedger l(100, 60s);
  l.handed_over_unacked(9);
  l.connected(t0);
  EXPECT_TRUE(l.take_duplicate(9, true, t0));
  EXPECT_FALSE(l.take_duplicate(9, true, t0)) << "one candidate answers for one redelivery";
}

TEST(RedeliveryLedger, identical_messages_count_as_many_as_were_handed_over) {
  RedeliveryLedger l(100, 60s);
  l.acked(5);
  l.acked(5);
  l.connection_lost();
  l.connected(t0);
  EXPECT_TRUE(l.take_duplicate(5, true, t0));
  EXPECT_TRUE(l.take_duplicate(5, true, t0));
  EXPECT_FALSE(l.take_duplicate(5, true, t0)) << "a third copy was never handed over";
}

TEST(RedeliveryLedger, the_window_starts_when_connected_again) {
  RedeliveryLedger l(100, 60s);
  l.acked(1);
  l.connection_lost();
  // A broker down for an hour: nothing expires while disconnected.
  l.expire(t0 + 1h);
  EXPECT_EQ(l.candidates(), 1u);
  l.connected(t0 + 1h);
  EXPECT_TRUE(l.take_duplicate(1, true, t0 + 1h + 59s));
  l.acked(2);
  l.connection_lost();
  l.connected(t0 + 2h);
  EXPECT_FALSE(l.take_duplicate(2, true, t0 + 2h + 60s)) << "past the window";
  EXPECT_EQ(l.candidates(), 0u);
}

TEST(RedeliveryLedger, candidates_survive_a_second_loss_within_the_window) {
  RedeliveryLedger l(100, 60s);
  l.acked(1);
  l.connection_lost();
  l.connected(t0);
  l.connection_lost();  // lost again before the redelivery came
  l.connected(t0 + 10s);
  EXPECT_TRUE(l.take_duplicate(1, true, t0 + 20s));
}

TEST(RedeliveryLedger, keeps_at_most_max_candidates_the_newest) {
  RedeliveryLedger l(3, 60s);
  for (uint64_t fp = 1; fp <= 5; ++fp) l.acked(fp);
  l.connection_lost();
  l.connected(t0);
  EXPECT_EQ(l.candidates(), 3u);
  EXPECT_FALSE(l.take_duplicate(1, true, t0));
  EXPECT_FALSE(l.take_duplicate(2, true, t0));
  EXPECT_TRUE(l.take_duplicate(5, true, t0));
}

TEST(AmqpFingerprint, tells_apart_key_body_and_properties) {
  using windlass::detail::amqp_fingerprint;
  const auto base = amqp_fingerprint("orders", "{\"event\":\"a\"}", "", 0);
  EXPECT_EQ(base, amqp_fingerprint("orders", "{\"event\":\"a\"}", "", 0));
  EXPECT_NE(base, amqp_fingerprint("order", "{\"event\":\"a\"}", "", 0));
  EXPECT_NE(base, amqp_fingerprint("orders", "{\"event\":\"b\"}", "", 0));
  EXPECT_NE(base, amqp_fingerprint("orders", "{\"event\":\"a\"}", "id-1", 0));
  EXPECT_NE(base, amqp_fingerprint("orders", "{\"event\":\"a\"}", "", 1700000000));
  EXPECT_NE(amqp_fingerprint("ab", "c", "", 0), amqp_fingerprint("a", "bc", "", 0));
}

// ---------------------------------------------------------------------------
// The backoff

TEST(Backoff, doubles_up_to_the_maximum_with_jitter_below_each_step) {
  windlass::detail::Backoff b(500ms, 30s, 42);
  std::chrono::milliseconds step = 500ms;
  for (int i = 0; i < 12; ++i) {
    auto d = b.next();
    EXPECT_GE(d, step / 2) << "attempt " << i;
    EXPECT_LE(d, step) << "attempt " << i;
    step = std::min<std::chrono::milliseconds>(step * 2, 30s);
  }
  b.reset();
  EXPECT_LE(b.next(), 500ms);
}

TEST(Backoff, spreads_its_delays) {
  windlass::detail::Backoff a(30s, 30s, 1), b(30s, 30s, 2);
  std::set<int64_t> seen;
  for (int i = 0; i < 8; ++i) {
    seen.insert(a.next().count());
    seen.insert(b.next().count());
  }
  EXPECT_GT(seen.size(), 8u);
}

// ---------------------------------------------------------------------------
// The thread, with no broker

uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);  // nothing listens there now: connect() is refused
  return ntohs(a.sin_port);
}

TEST(AmqpInput, retries_a_refused_connection_and_stops_during_its_backoff) {
  windlass::Loop loop;
  AmqpOptions o = valid_options();
  o.url = "amqp://127.0.0.1:" + std::to_string(closed_port());
  o.backoff_initial = 20ms;
  o.backoff_max = 60s;  // the wait it is stopped in grows long
  std::atomic<int> calls{0};
  auto input = std::make_unique<windlass::AmqpInput>(loop, o, [&](std::string_view, std::string_view) {
    ++calls;
    return true;
  });
  EXPECT_FALSE(input->stats().connected);
  input->start();
  EXPECT_THROW(input->start(), std::logic_error);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (input->stats().connect_failures < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  windlass::AmqpStats s = input->stats();
  EXPECT_GE(s.connect_failures, 3u);
  EXPECT_FALSE(s.connected);
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_EQ(s.delivered, 0u);
  const auto t = std::chrono::steady_clock::now();
  input.reset();  // stop() wakes the backoff; the destructor joins
  EXPECT_LT(std::chrono::steady_clock::now() - t, 2s);
  EXPECT_EQ(calls.load(), 0);
}

TEST(AmqpInput, stop_from_another_thread_before_start_and_twice) {
  windlass::Loop loop;
  windlass::AmqpInput input(loop, valid_options(), [](std::string_view, std::string_view) { return true; });
  std::thread other([&] { input.stop(); });
  other.join();
  input.stop();
  EXPECT_THROW(input.start(), std::logic_error) << "a stopped input does not start";
}

}  // namespace
