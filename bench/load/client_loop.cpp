#include "client_loop.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "proto/close_code.hpp"
#include "proto/ws_frame.hpp"
#include "proto/ws_handshake.hpp"

namespace windlass::load {
namespace {

constexpr size_t kReceiveBufferSize = 512 * 1024;
constexpr size_t kMaxResponseHead = 8 * 1024;
// A client stuck this long in connect, upgrade or close is given up on.
constexpr uint64_t kStuckAfterNs = 10'000'000'000;
constexpr int kMaxEventsPerPoll = 512;
// Set in the epoll data of a Watcher (a Client pointer, aligned, never has it).
constexpr uint64_t kWatcherTag = 1;
static_assert(alignof(Client) > 1 && alignof(Watcher) > 1, "the tag bit must be free in both pointers");

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_token(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The client's checks of the server's answer (RFC 6455 §4.1, "if the
// status code received from the server is not 101..." and the items after
// it). Returns nullptr for a valid 101, else the reason it is not.
const char* check_upgrade_response(std::string_view head, std::string_view expected_accept) {
  const size_t line_end = head.find("\r\n");
  const std::string_view status = head.substr(0, line_end);
  if (status.substr(0, 13) != "HTTP/1.1 101 " && status != "HTTP/1.1 101") {
    return "status is not 101";
  }
  bool upgrade = false;
  bool connection = false;
  bool accept = false;
  head.remove_prefix(line_end + 2);
  while (!head.empty()) {
    const size_t end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    head.remove_prefix(end == std::string_view::npos ? head.size() : end + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "upgrade")) {
      upgrade = iequals(value, "websocket");
    } else if (iequals(name, "connection")) {
      connection = has_token(value, "upgrade");
    } else if (iequals(name, "sec-websocket-accept")) {
      accept = value == expected_accept;
      if (!accept) return "Sec-WebSocket-Accept does not match the key";
    } else if (iequals(name, "sec-websocket-extensions") && !value.empty()) {
      return "server chose an extension that was not offered";
    }
  }
  if (!upgrade) return "no Upgrade: websocket";
  if (!connection) return "no Connection: upgrade";
  if (!accept) return "no Sec-WebSocket-Accept";
  return nullptr;
}

void base64_16(const uint8_t in[16], char out[24]) noexcept {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < 15; i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out[o++] = kAlphabet[(v >> 18) & 63];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
    out[o++] = kAlphabet[v & 63];
  }
  const uint32_t last = uint32_t{in[15]} << 16;
  out[o++] = kAlphabet[(last >> 18) & 63];
  out[o++] = kAlphabet[(last >> 12) & 63];
  out[o++] = '=';
  out[o++] = '=';
}

uint64_t random_seed() noexcept {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) seed = monotonic_ns();
  return seed | 1;  // xorshift must not start at zero
}

}  // namespace

uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

bool resolve_target(const Options& opts, Target& out, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(opts.port);
  if (const int rc = getaddrinfo(opts.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve " + opts.host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&out.address, found->ai_addr, found->ai_addrlen);
  out.address_len = found->ai_addrlen;
  freeaddrinfo(found);
  const bool ipv6_literal = opts.host.find(':') != std::string::npos;
  out.host_header = (ipv6_literal ? "[" + opts.host + "]" : opts.host) + ":" + port;
  out.path = opts.path;
  return true;
}

// ---------------------------------------------------------------- Stats

void Stats::reset_window() noexcept {
  messages_sent = messages_received = 0;
  payload_bytes_received = 0;
  handshakes = 0;
  latency.reset();
}

uint64_t Stats::errors() const noexcept {
  return connect_errors + handshake_errors + protocol_errors + echo_mismatches + delivery_errors +
         subscribe_errors + api_errors + unexpected_closes + timeouts;
}

// ---------------------------------------------------------------- Client

uint8_t* Client::OutputBuffer::grow(size_t more) {
  if (size + more > capacity) {
    const size_t wanted = std::max({size + more, capacity * 2, size_t{4096}});
    auto bigger = std::make_unique_for_overwrite<uint8_t[]>(wanted);
    if (size > sent) std::memcpy(bigger.get(), data.get() + sent, size - sent);
    size -= sent;
    sent = 0;
    data = std::move(bigger);
    capacity = wanted;
  }
  uint8_t* where = data.get() + size;
  size += more;
  return where;
}

void Client::send(Opcode op, const uint8_t* payload, size_t len) {
  uint8_t mask[4];
  const uint32_t key = loop_->random_u32();
  std::memcpy(mask, &key, 4);
  uint8_t header[proto::kMaxFrameHeader];
  const size_t header_len = proto::encode_frame_header(header, op, len, true, false, mask);
  uint8_t* where = out_.grow(header_len + len);
  std::memcpy(where, header, header_len);
  if (op == Opcode::text || op == Opcode::binary) ++loop_->stats_.messages_sent;
  if (len > 0) {
    std::memcpy(where + header_len, payload, len);
    proto::apply_mask(where + header_len, len, mask);
  }
  loop_->queue_flush(*this);
}

void Client::close(uint16_t code) {
  if (state_ != ClientState::open) return;
  const uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  send(Opcode::close, payload, sizeof payload);
  we_sent_close_ = true;
  state_ = ClientState::closing;
  state_since_ns_ = loop_->now_ns();
}

void Client::reset() noexcept {
  fd_ = -1;
  state_ = ClientState::idle;
  we_sent_close_ = got_close_ = false;
  waiting_writable_ = false;
  reader_ = ServerFrameReader{};
  message_length_ = 0;
  message_first_ = message_last_ = -1;
  std::string().swap(response_);
  out_.clear();
}

// Adapts the reader's callbacks to the client and its workload.
struct Client::FrameSink {
  Client& c;
  ClientLoop& loop;

  void on_data(const uint8_t* chunk, size_t len) noexcept {
    if (len == 0) return;
    if (loop.reads_payload_) loop.workload_.on_payload(c, chunk, len, c.message_length_);
    if (c.message_length_ == 0) c.message_first_ = chunk[0];
    c.message_last_ = chunk[len - 1];
    c.message_length_ += len;
  }

  void on_message_end(Opcode opcode, uint64_t length) {
    const Message message{opcode, length, c.message_first_, c.message_last_};
    c.message_length_ = 0;
    c.message_first_ = c.message_last_ = -1;
    ++loop.stats_.messages_received;
    loop.stats_.payload_bytes_received += length;
    loop.workload_.on_message(c, message);
  }

  bool on_control(Opcode opcode, const uint8_t* payload, size_t len) {
    if (opcode == Opcode::ping) {
      // §5.5.2: answer with a pong carrying the same payload, unless we are
      // already closing and the server will not read it.
      if (c.state_ == ClientState::open) c.send(Opcode::pong, payload, len);
      return true;
    }
    if (opcode == Opcode::pong) return true;

    // A close frame (§5.5.1): 0 bytes means no code (1005); 1 byte is invalid.
    uint16_t code = 1005;
    if (len == 1) {
      ++loop.stats_.protocol_errors;
    } else if (len >= 2) {
      code = static_cast<uint16_t>((payload[0] << 8) | payload[1]);
    }
    ++loop.stats_.server_close_codes[code];
    c.got_close_ = true;
    if (!c.we_sent_close_) {
      // The server started the close: that is an error for a load run. Echo
      // the code back to finish the handshake politely (§5.5.1).
      if (loop.stats_.unexpected_closes++ == 0) {
        std::fprintf(stderr, "windlass-load: connection %zu: the server closed it with code %u: %.*s\n",
                     c.index_, code, len > 2 ? static_cast<int>(len - 2) : 0,
                     reinterpret_cast<const char*>(payload) + 2);
      }
      c.close(proto::is_valid_wire_close_code(code) ? code : 1000);
    }
    return false;
  }
};

// ---------------------------------------------------------------- ClientLoop

ClientLoop::ClientLoop(const Options& opts, const Target& target, size_t slots, Workload& workload)
    : opts_(opts),
      target_(target),
      workload_(workload),
      reads_payload_(workload.reads_payload()),
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      receive_buffer_(std::make_unique_for_overwrite<uint8_t[]>(kReceiveBufferSize)),
      rng_state_(random_seed()),
      now_ns_(monotonic_ns()) {
  if (epoll_fd_ < 0) {
    abort(std::string("epoll_create1: ") + std::strerror(errno));
  }
  clients_.reserve(slots);
  for (size_t i = 0; i < slots; ++i) {
    auto c = std::make_unique<Client>();
    c->loop_ = this;
    c->index_ = i;
    clients_.push_back(std::move(c));
  }
  flush_queue_.reserve(slots);
}

ClientLoop::~ClientLoop() {
  for (auto& c : clients_) {
    if (c->fd_ >= 0) ::close(c->fd_);
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

uint32_t ClientLoop::random_u32() noexcept {
  // xorshift64*: plenty for masking keys and handshake nonces, which must
  // be unpredictable to intermediaries, not cryptographically strong.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  return static_cast<uint32_t>((rng_state_ * 0x2545F4914F6CDD1DULL) >> 32);
}

bool ClientLoop::watch(int fd, uint32_t events, Watcher& watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = reinterpret_cast<uint64_t>(&watcher) | kWatcherTag;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool ClientLoop::rewatch(int fd, uint32_t events, Watcher& watcher) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = reinterpret_cast<uint64_t>(&watcher) | kWatcherTag;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void ClientLoop::abort(std::string reason) {
  if (abort_reason_.empty()) abort_reason_ = std::move(reason);
}

void ClientLoop::connect(Client& client) {
  if (client.state_ != ClientState::idle) return;
  client.state_ = ClientState::connecting;
  client.state_since_ns_ = now_ns_;
  connect_queue_.push_back(&client);
}

void ClientLoop::connect_all() {
  for (auto& c : clients_) connect(*c);
}

size_t ClientLoop::count(ClientState state) const noexcept {
  return static_cast<size_t>(
      std::count_if(clients_.begin(), clients_.end(), [state](const auto& c) { return c->state_ == state; }));
}

void ClientLoop::start_connect(Client& c) {
  now_ns_ = monotonic_ns();
  c.connect_started_ns_ = c.state_since_ns_ = now_ns_;
  const int fd = socket(target_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    // Out of descriptors or memory: a setup problem, not a server one.
    abort(std::string("socket: ") + std::strerror(errno));
    c.state_ = ClientState::idle;
    return;
  }
  // Small messages must leave at once, not wait for Nagle's timer.
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.fd_ = fd;
  ++connecting_;

  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.ptr = &c;
  c.waiting_writable_ = true;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    abort(std::string("epoll_ctl: ") + std::strerror(errno));
    drop(c, false);
    return;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&target_.address), target_.address_len) != 0 &&
      errno != EINPROGRESS) {
    fail(c, stats_.connect_errors, std::string("connect: ") + std::strerror(errno));
  }
  // Otherwise EPOLLOUT reports the outcome, whether connect finished at
  // once (common on loopback) or not.
}

void ClientLoop::on_connected(Client& c) {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
    fail(c, stats_.connect_errors, std::string("connect: ") + std::strerror(error ? error : errno));
    return;
  }
  uint8_t nonce[16];
  for (size_t i = 0; i < 16; i += 4) {
    const uint32_t r = random_u32();
    std::memcpy(nonce + i, &r, 4);
  }
  base64_16(nonce, c.key_);

  // RFC 6455 §4.1: the opening handshake, no extensions, no subprotocol.
  std::array<char, 1024> request;
  const int n = std::snprintf(request.data(), request.size(),
                              "GET %s HTTP/1.1\r\n"
                              "Host: %s\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: %.24s\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n",
                              target_.path.c_str(), target_.host_header.c_str(), c.key_);
  if (n <= 0 || static_cast<size_t>(n) >= request.size()) {
    abort("upgrade request too long: shorten --path");
    drop(c, false);
    return;
  }
  std::memcpy(c.out_.grow(static_cast<size_t>(n)), request.data(), static_cast<size_t>(n));
  c.state_ = ClientState::handshaking;
  queue_flush(c);
}

void ClientLoop::poll(int timeout_ms) {
  epoll_event events[kMaxEventsPerPoll];
  const int n = epoll_wait(epoll_fd_, events, kMaxEventsPerPoll, timeout_ms);
  if (n < 0 && errno != EINTR) abort(std::string("epoll_wait: ") + std::strerror(errno));
  for (int i = 0; i < n; ++i) {
    const uint32_t what = events[i].events;
    now_ns_ = monotonic_ns();
    if ((events[i].data.u64 & kWatcherTag) != 0) {
      reinterpret_cast<Watcher*>(events[i].data.u64 & ~kWatcherTag)->on_events(what);
      continue;
    }
    Client& c = *static_cast<Client*>(events[i].data.ptr);
    if (c.state_ == ClientState::connecting) {
      on_connected(c);
      continue;
    }
    if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    if ((what & EPOLLOUT) && c.fd_ >= 0) flush(c);
  }
  now_ns_ = monotonic_ns();

  while (!connect_queue_.empty() && connecting_ < opts_.max_connecting) {
    Client& c = *connect_queue_.front();
    connect_queue_.pop_front();
    start_connect(c);
  }
  if (now_ns_ - last_expiry_check_ns_ > 250'000'000) {
    last_expiry_check_ns_ = now_ns_;
    expire_stuck_clients();
  }
  // Everything the callbacks queued goes out now, one write per client
  // however many frames it holds.
  for (Client* c : flush_queue_) {
    c->queued_for_flush_ = false;
    if (c->fd_ >= 0) flush(*c);
  }
  flush_queue_.clear();
}

void ClientLoop::run_until(uint64_t deadline_ns) {
  while (!aborted()) {
    const uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return;
    const uint64_t left_ms = (deadline_ns - now) / 1'000'000;
    poll(static_cast<int>(std::min<uint64_t>(left_ms + 1, 100)));
  }
}

void ClientLoop::close_all(int timeout_ms) {
  connect_queue_.clear();
  for (auto& c : clients_) {
    if (c->state_ == ClientState::open) {
      c->close(1000);
    } else if (c->state_ == ClientState::connecting || c->state_ == ClientState::handshaking) {
      drop(*c, false);  // not open yet: nothing to close politely
    }
  }
  const uint64_t deadline = monotonic_ns() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
  while (monotonic_ns() < deadline && count(ClientState::idle) < clients_.size()) poll(10);
  for (auto& c : clients_) {
    if (c->state_ != ClientState::idle) {
      fail(*c, stats_.timeouts, "no end to the close handshake within " + std::to_string(timeout_ms) + " ms");
    }
  }
}

void ClientLoop::on_readable(Client& c) {
  const ssize_t n = ::read(c.fd_, receive_buffer_.get(), kReceiveBufferSize);
  if (n > 0) {
    if (c.state_ == ClientState::handshaking) {
      on_handshake_bytes(c, receive_buffer_.get(), static_cast<size_t>(n));
    } else {
      on_frame_bytes(c, receive_buffer_.get(), static_cast<size_t>(n));
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  on_eof(c, n == 0 ? "the server closed TCP" : std::string("read: ") + std::strerror(errno));
}

void ClientLoop::on_handshake_bytes(Client& c, const uint8_t* data, size_t len) {
  c.response_.append(reinterpret_cast<const char*>(data), len);
  const size_t end = c.response_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (c.response_.size() > kMaxResponseHead) {
      fail(c, stats_.handshake_errors, "upgrade response head longer than 8 KiB");
    }
    return;
  }
  const std::string expected = proto::compute_accept_key(std::string_view(c.key_, sizeof c.key_));
  const std::string_view head(c.response_.data(), end + 2);
  if (const char* why = check_upgrade_response(head, expected)) {
    fail(c, stats_.handshake_errors,
         std::string("upgrade refused: ") + why + "; the response was:\n" + std::string(head.substr(0, 600)));
    return;
  }
  // Bytes after the head are already frames; keep them before the head's
  // storage is released.
  const size_t head_len = end + 4;
  const std::string rest = c.response_.substr(head_len);
  std::string().swap(c.response_);
  --connecting_;
  c.state_ = ClientState::open;
  c.state_since_ns_ = now_ns_;
  ++stats_.handshakes;
  workload_.on_open(c, now_ns_ - c.connect_started_ns_);
  if (!rest.empty() && c.fd_ >= 0) {
    on_frame_bytes(c, reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
  }
}

void ClientLoop::on_frame_bytes(Client& c, const uint8_t* data, size_t len) {
  if (c.reader_.stopped()) return;  // after the server's close frame (§5.5.1)
  Client::FrameSink sink{c, *this};
  const ReadError error = c.reader_.feed(data, len, sink);
  if (error != ReadError::none) {
    fail(c, stats_.protocol_errors, std::string("invalid frame from the server: ") + describe(error));
  }
}

void ClientLoop::on_eof(Client& c, const std::string& how) {
  if (c.state_ == ClientState::handshaking) {
    fail(c, stats_.handshake_errors, how + " before answering the upgrade");
    return;
  }
  // The server closing TCP after both close frames is the normal end
  // (§7.1.1); without its close frame it dropped us.
  if (!c.got_close_) {
    fail(c, stats_.unexpected_closes, how + " without a close frame");
    return;
  }
  drop(c, c.we_sent_close_);
}

void ClientLoop::fail(Client& c, uint64_t& counter, const std::string& why) {
  if (counter++ == 0) std::fprintf(stderr, "windlass-load: connection %zu: %s\n", c.index_, why.c_str());
  drop(c, false);
}

void ClientLoop::queue_flush(Client& c) {
  if (c.queued_for_flush_) return;
  c.queued_for_flush_ = true;
  flush_queue_.push_back(&c);
}

void ClientLoop::flush(Client& c) {
  while (!c.out_.empty()) {
    const ssize_t n = ::send(c.fd_, c.out_.data.get() + c.out_.sent, c.out_.size - c.out_.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      set_writable_interest(c, true);
      return;
    }
    // The server reset the connection; the read side reports how.
    c.out_.clear();
    break;
  }
  c.out_.clear();
  set_writable_interest(c, false);
}

void ClientLoop::set_writable_interest(Client& c, bool want) {
  if (c.waiting_writable_ == want) return;
  c.waiting_writable_ = want;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd_, &ev);
}

void ClientLoop::drop(Client& c, bool clean) {
  if (c.fd_ < 0) {
    c.reset();
    return;
  }
  if (c.state_ == ClientState::connecting || c.state_ == ClientState::handshaking) --connecting_;
  ::close(c.fd_);  // also removes it from the epoll set
  c.reset();
  workload_.on_closed(c, clean);
}

void ClientLoop::expire_stuck_clients() {
  for (auto& c : clients_) {
    const bool waiting = c->fd_ >= 0 && c->state_ != ClientState::open;
    if (waiting && now_ns_ - c->state_since_ns_ > kStuckAfterNs) {
      fail(*c, stats_.timeouts, "stuck in connect, upgrade or close for 10 s");
    }
  }
}

}  // namespace windlass::load
