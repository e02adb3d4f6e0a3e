#include "bridge/redis_link.hpp"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "windlass/log.hpp"

namespace windlass::redis {

namespace {
constexpr auto kDeadlineCheck = std::chrono::milliseconds(100);

std::chrono::milliseconds jitter(std::chrono::milliseconds d) {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> pick(d.count() / 2, d.count());
  return std::chrono::milliseconds(pick(rng));
}
}  // namespace

std::string Endpoint::to_string() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string_view reply_string(const redisReply& r) noexcept {
  if (r.str == nullptr) return {};
  return std::string_view(r.str, r.len);
}

bool reply_is_error(const redisReply& r) noexcept {
  return r.type == REDIS_REPLY_ERROR;
}

Link::Link(Loop& loop, LinkOptions options) : loop_(loop), options_(std::move(options)) {}

Link::~Link() {
  *alive_ = false;
  stop();
}

void Link::start() {
  if (state_ != State::stopped) return;
  state_ = State::waiting;
  backoff_ = std::chrono::milliseconds(0);
  connect();
  deadline_timer_ = loop_.add_timer(kDeadlineCheck, [this] { check_deadlines(); }, kDeadlineCheck);
}

void Link::stop() {
  if (state_ == State::stopped) return;
  loop_.cancel_timer(deadline_timer_);
  loop_.cancel_timer(reconnect_timer_);
  loop_.cancel_timer(connect_timer_);
  deadline_timer_ = reconnect_timer_ = connect_timer_ = 0;
  if (fd_ >= 0) {
    loop_.remove_fd(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  if (reader_ != nullptr) {
    redisReaderFree(reader_);
    reader_ = nullptr;
  }
  state_ = State::stopped;
  out_.clear();
  // Everyone waiting hears that it is over, once.
  auto pending = std::move(pending_);
  auto held = std::move(held_);
  for (auto& p : pending) {
    if (p.cb) p.cb(nullptr, "link stopped");
  }
  for (auto& [cmd, p] : held) {
    if (p.cb) p.cb(nullptr, "link stopped");
  }
}

void Link::connect() {
  state_ = State::connecting;
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
  int family = AF_INET;
  if (::inet_pton(AF_INET, options_.endpoint.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(options_.endpoint.port);
    len = sizeof *in4;
  } else if (::inet_pton(AF_INET6, options_.endpoint.host.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(options_.endpoint.port);
    len = sizeof *in6;
  } else {
    return lost("not a numeric address: " + options_.endpoint.host);
  }
  fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return lost(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
    return lost(std::string("connect: ") + std::strerror(errno));
  }
  loop_.add_fd(fd_, EPOLLOUT, this);
  want_write_ = true;
  std::weak_ptr<bool> alive = alive_;
  connect_timer_ = loop_.add_timer(options_.connect_timeout, [this, alive] {
    if (alive.expired()) return;
    connect_timer_ = 0;
    if (state_ == State::connecting) lost("connect timed out");
  });
}

void Link::connected() {
  loop_.cancel_timer(connect_timer_);
  connect_timer_ = 0;
  reader_ = redisReaderCreate();
  state_ = State::handshaking;
  backoff_ = std::chrono::milliseconds(0);
  // The handshake goes first on the wire; what was held waits behind it.
  std::vector<std::string_view> auth = {"AUTH"};
  if (!options_.username.empty()) auth.push_back(options_.username);
  auth.push_back(options_.password);
  const bool needs_auth = !options_.password.empty();
  const bool needs_select = options_.database != 0;
  const std::string db = std::to_string(options_.database);
  auto finish = [this](const redisReply* r, std::string_view error) {
    if (!error.empty()) return;  // lost meanwhile: already reported
    if (r != nullptr && reply_is_error(*r)) {
      lost("handshake refused: " + std::string(reply_string(*r)));
    }
  };
  if (needs_auth) append_command(auth, Pending{finish, {}, {}, {}, true});
  if (needs_select) append_command({"SELECT", db}, Pending{finish, {}, {}, {}, true});
  // A PING closes the handshake: when it is answered, the link is ready.
  append_command({"PING"}, Pending{[this](const redisReply* r, std::string_view error) {
                                     if (!error.empty() || state_ != State::handshaking) return;
                                     if (r != nullptr && reply_is_error(*r)) {
                                       return lost("PING refused: " + std::string(reply_string(*r)));
                                     }
                                     state_ = State::ready;
                                     auto held = std::move(held_);
                                     for (auto& [cmd, p] : held) send_now(std::move(cmd), std::move(p));
                                     if (state_handler_) state_handler_(true, {});
                                   },
                                   {}, {}, {}, true});
  set_interest();
}

void Link::lost(std::string why) {
  if (state_ == State::stopped) return;
  const bool was_up = state_ == State::ready;
  if (fd_ >= 0) {
    loop_.remove_fd(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  if (reader_ != nullptr) {
    redisReaderFree(reader_);
    reader_ = nullptr;
  }
  loop_.cancel_timer(connect_timer_);
  connect_timer_ = 0;
  out_.clear();
  want_write_ = false;
  // Sent commands may or may not have run: their callers decide. Held
  // ones were never sent: they wait for the next connection.
  auto pending = std::move(pending_);
  state_ = State::waiting;
  for (auto& p : pending) {
    if (p.cb && !p.internal) p.cb(nullptr, why);
  }
  if (state_ == State::stopped) return;  // a callback stopped us
  if (was_up || backoff_.count() == 0) {
    windlass::log(LogLevel::warn, "redis: " + options_.endpoint.to_string() + ": " + why);
  }
  if (state_handler_ && was_up) state_handler_(false, why);
  schedule_reconnect();
}

void Link::schedule_reconnect() {
  backoff_ = backoff_.count() == 0 ? options_.reconnect_min : std::min(options_.reconnect_max, backoff_ * 2);
  std::weak_ptr<bool> alive = alive_;
  reconnect_timer_ = loop_.add_timer(jitter(backoff_), [this, alive] {
    if (alive.expired()) return;
    reconnect_timer_ = 0;
    if (state_ == State::waiting) connect();
  });
}

bool Link::append_command(const std::vector<std::string_view>& args, Pending p) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (n < 0 || cmd == nullptr) return false;
  std::string formatted(cmd, static_cast<size_t>(n));
  redisFreeCommand(cmd);
  if (p.deadline == Loop::Clock::time_point{}) p.deadline = loop_.now() + options_.reply_timeout;
  if (state_ == State::ready || p.internal) {
    send_now(std::move(formatted), std::move(p));
  } else {
    held_.emplace_back(std::move(formatted), std::move(p));
  }
  return true;
}

void Link::send_now(std::string cmd, Pending p) {
  out_ += cmd;
  pending_.push_back(std::move(p));
  // Every command of this turn leaves in one write, at its end.
  if (!flush_deferred_) {
    flush_deferred_ = true;
    std::weak_ptr<bool> alive = alive_;
    loop_.defer([this, alive] {
      if (alive.expired()) return;
      flush_deferred_ = false;
      flush();
    });
  }
}

bool Link::command(std::initializer_list<std::string_view> args, Callback cb) {
  if (state_ == State::stopped || pending_.size() + held_.size() >= options_.max_pending) return false;
  return append_command(std::vector<std::string_view>(args), Pending{std::move(cb), {}, {}, {}, false});
}

bool Link::command(const std::vector<std::string>& args, Callback cb) {
  if (state_ == State::stopped || pending_.size() + held_.size() >= options_.max_pending) return false;
  std::vector<std::string_view> views(args.begin(), args.end());
  return append_command(views, Pending{std::move(cb), {}, {}, {}, false});
}

bool Link::subscription_command(std::string_view verb, std::string_view channel, Callback cb) {
  if (state_ == State::stopped || pending_.size() + held_.size() >= options_.max_pending) return false;
  std::string kind(verb);
  for (char& c : kind) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  subscriber_ = true;
  return append_command({verb, channel}, Pending{std::move(cb), {}, std::move(kind), std::string(channel), false});
}

void Link::set_interest() {
  if (fd_ < 0) return;
  const bool want = state_ == State::connecting || !out_.empty();
  const uint32_t events = state_ == State::connecting ? EPOLLOUT : (EPOLLIN | (want ? EPOLLOUT : 0u));
  loop_.modify_fd(fd_, events, this);
  want_write_ = want;
}

void Link::flush() {
  if (fd_ < 0 || state_ == State::connecting || out_.empty()) return;
  while (!out_.empty()) {
    const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    return lost(std::string("send: ") + std::strerror(errno));
  }
  if (out_.empty() != !want_write_) set_interest();
}

void Link::on_io(uint32_t events) {
  if (fd_ < 0) return;
  if (state_ == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return lost(std::string("connect: ") + std::strerror(err));
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    connected();
    flush();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    read();
    if (fd_ < 0) return;
  }
  if (events & EPOLLOUT) flush();
}

void Link::read() {
  char buf[64 * 1024];
  for (int round = 0; round < 16; ++round) {  // bounded per wake-up: other sockets get their turn
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return lost("connection closed by the server");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return lost(std::string("recv: ") + std::strerror(errno));
    }
    if (redisReaderFeed(reader_, buf, static_cast<size_t>(n)) != REDIS_OK) return lost("reader failed");
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        return lost(std::string("protocol error: ") + (reader_->errstr[0] != '\0' ? reader_->errstr : "?"));
      }
      if (reply == nullptr) break;
      dispatch(static_cast<redisReply*>(reply));
      freeReplyObject(reply);
      if (fd_ < 0 || reader_ == nullptr) return;  // a callback dropped or stopped the link
    }
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
}

void Link::dispatch(redisReply* r) {
  // A pub/sub array: ["message", channel, payload], ["smessage", ...],
  // ["pmessage", pattern, channel, payload], or a confirmation.
  std::string_view kind;
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && r->element[0]->type == REDIS_REPLY_STRING) {
    kind = reply_string(*r->element[0]);
  }
  const bool message = kind == "message" || kind == "smessage" || kind == "pmessage";
  const bool confirmation = kind == "subscribe" || kind == "ssubscribe" || kind == "psubscribe" ||
                            kind == "unsubscribe" || kind == "sunsubscribe" || kind == "punsubscribe";
  if (!message && !pending_.empty()) {
    Pending& front = pending_.front();
    // On a subscriber link a confirmation is the answer of the command
    // that asked for it, and of no other: Redis sends some by itself.
    const bool matches = front.expect_kind.empty()
                             ? !(subscriber_ && confirmation)
                             : kind == front.expect_kind && reply_string(*r->element[1]) == front.expect_channel;
    if (matches) {
      Pending p = std::move(front);
      pending_.pop_front();
      if (p.cb) p.cb(r, {});
      return;
    }
  }
  if (push_) push_(*r);
}

void Link::check_deadlines() {
  const auto now = loop_.now();
  if (!pending_.empty() && pending_.front().deadline <= now) {
    return lost("no reply within " + std::to_string(options_.reply_timeout.count()) + " ms");
  }
  // Held commands that waited too long for a connection are given up.
  while (!held_.empty() && held_.front().second.deadline <= now) {
    Pending p = std::move(held_.front().second);
    held_.pop_front();
    if (p.cb) p.cb(nullptr, "not connected");
  }
}

}  // namespace windlass::redis
