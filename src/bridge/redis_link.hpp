// One connection to one Redis server, driven by a windlass Loop: commands
// pipelined (every command of a loop turn leaves in one write), replies
// matched to their callbacks in order, and the messages of a subscriber
// connection handed to a push handler.
//
// Why not hiredis's async API: Debian 12 ships hiredis 0.14, whose async
// context knows SUBSCRIBE and PSUBSCRIBE but not sharded pub/sub
// (SSUBSCRIBE, SMESSAGE, SUNSUBSCRIBE: Redis 7), and asserts when a reply
// arrives that no callback waits for — which is what a shard's smessage,
// or the sunsubscribe Redis sends by itself when a slot moves, is. So the
// link uses hiredis for what it does well, the RESP reader and the command
// formatter, on a socket the loop watches (Loop::add_fd), with no thread
// and no blocking call: the address is numeric (names are resolved once,
// before the loops run), the connect is non-blocking, and every deadline
// (connect, each reply) is a loop timer.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/loop.hpp"

struct redisReader;
struct redisReply;

namespace windlass::redis {

struct Endpoint {
  std::string host;  // numeric IPv4 or IPv6
  uint16_t port = 6379;
  bool operator==(const Endpoint&) const = default;
  std::string to_string() const;
};

struct LinkOptions {
  Endpoint endpoint;
  std::string username;  // AUTH username password (Redis 6 ACLs); empty: AUTH password alone
  std::string password;  // empty: no AUTH
  int database = 0;      // SELECT (standalone only)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reply_timeout{5000};  // past it the link is dropped: replies are in order
  size_t max_pending = 100'000;                   // commands sent and not answered, and queued
  // Reconnection after a loss: the delay doubles from min to max, with
  // jitter. The ceiling bounds how long a node stays split once Redis is
  // back (the cluster promises cross-node delivery again within 5 s); a
  // connection attempt every 1-2 s per link costs a dead Redis nothing.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{2000};
};

// A reply's text, for callers that want one value.
std::string_view reply_string(const redisReply& r) noexcept;
bool reply_is_error(const redisReply& r) noexcept;

class Link final : public IoHandler {
 public:
  // `reply` is null when `error` is set (the command never got an answer:
  // the link was lost, timed out or was stopped); a Redis error reply is a
  // reply whose type is REDIS_REPLY_ERROR, with `error` empty.
  using Callback = std::function<void(const redisReply* reply, std::string_view error)>;
  using PushHandler = std::function<void(const redisReply& push)>;
  using StateHandler = std::function<void(bool up, std::string_view why)>;

  Link(Loop& loop, LinkOptions options);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Loop thread only, like everything here.
  void start();
  void stop();
  bool up() const noexcept { return state_ == State::ready; }
  const Endpoint& endpoint() const noexcept { return options_.endpoint; }

  // Queues a command. Commands given while the link is connecting wait
  // for it; false (and no callback) when it is stopped or max_pending
  // commands are waiting already.
  bool command(std::initializer_list<std::string_view> args, Callback cb);
  bool command(const std::vector<std::string>& args, Callback cb);
  // A (P|S)SUBSCRIBE or (P|S)UNSUBSCRIBE of one channel: its confirmation
  // is matched by kind and channel, so the confirmations Redis sends by
  // itself (an sunsubscribe when a slot moves) go to the push handler.
  bool subscription_command(std::string_view verb, std::string_view channel, Callback cb);

  // Replies nobody asked for: messages (message, pmessage, smessage) and
  // unasked confirmations.
  void on_push(PushHandler h) { push_ = std::move(h); }
  // up: ready for commands (connected, authenticated); down: lost, with why.
  void on_state(StateHandler h) { state_handler_ = std::move(h); }

  void on_io(uint32_t events) override;

 private:
  enum class State : uint8_t { stopped, waiting, connecting, handshaking, ready };
  struct Pending {
    Callback cb;
    Loop::Clock::time_point deadline;
    std::string expect_kind;     // subscription commands: "subscribe", "sunsubscribe", ...
    std::string expect_channel;  // and the channel
    bool internal = false;       // AUTH / SELECT of the handshake
  };

  bool append_command(const std::vector<std::string_view>& args, Pending p);
  void send_now(std::string cmd, Pending p);
  void connect();
  void connected();
  void lost(std::string why);
  void schedule_reconnect();
  void flush();
  void read();
  void dispatch(redisReply* reply);
  void check_deadlines();
  void set_interest();

  Loop& loop_;
  LinkOptions options_;
  State state_ = State::stopped;
  int fd_ = -1;
  bool want_write_ = false;
  bool flush_deferred_ = false;
  bool subscriber_ = false;  // has sent a subscription command: confirmations may come unasked
  std::string out_;              // formatted commands not yet written
  std::deque<Pending> pending_;  // in out_ or written, awaiting their replies, in order
  // Commands given while the link is not ready: sent once it is (after the
  // handshake), in order; failed at their deadline if it takes too long.
  std::deque<std::pair<std::string, Pending>> held_;
  redisReader* reader_ = nullptr;
  PushHandler push_;
  StateHandler state_handler_;
  Loop::TimerId connect_timer_ = 0;
  Loop::TimerId reconnect_timer_ = 0;
  Loop::TimerId deadline_timer_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for deferred work after destruction
};

}  // namespace windlass::redis
