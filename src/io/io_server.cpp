#include "io/io_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.hpp"

namespace windlass::detail {

// A connection's transport state; see the WsConnection size check too.
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(Socket) <= 216, "Socket grew: update bench/RESULTS.md's memory table");
#endif

// ---------------------------------------------------------------- Socket

Socket::Socket(IoServer& server, int fd, std::string remote_address, uint16_t remote_port)
    : server_(server), fd_(fd), remote_address_(std::move(remote_address)), remote_port_(remote_port) {}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

Loop& Socket::loop() const noexcept {
  return server_.loop_;
}

void Socket::set_handler(std::shared_ptr<SocketHandler> handler) {
  retired_handler_ = std::move(handler_);
  handler_ = std::move(handler);
}

// Replies bigger than this bypass the cork (see Socket::uncork): one copy
// into the queue instead of two.
constexpr size_t kCorkLimit = 64 * 1024;

size_t Socket::queued_amount() const noexcept {
  return out_.size() + (tls_ ? tls_->wire.size() : 0);
}

size_t Socket::buffered_amount() const noexcept {
  return queued_amount() + (corked() ? server_.cork_.size() : 0);
}

bool Socket::would_exceed(size_t n) const noexcept {
  return buffered_amount() + n > server_.options_.max_send_queue;
}

void Socket::queued(size_t n) noexcept {
  server_.queued_bytes_.add(n);
}

bool Socket::write(const void* data, size_t n) {
  if (fd_ < 0 || close_requested_ || would_exceed(n)) return false;
  if (cork_takes(n)) {
    server_.cork_.append(static_cast<const char*>(data), n);
    return true;
  }
  out_.append(server_.pool_, data, n);
  queued(n);
  mark_dirty();
  return true;
}

bool Socket::write2(const void* a, size_t an, const void* b, size_t bn) {
  if (fd_ < 0 || close_requested_ || would_exceed(an + bn)) return false;
  if (cork_takes(an + bn)) {
    server_.cork_.append(static_cast<const char*>(a), an);
    server_.cork_.append(static_cast<const char*>(b), bn);
    return true;
  }
  out_.append(server_.pool_, a, an, b, bn);
  queued(an + bn);
  mark_dirty();
  return true;
}

bool Socket::write_shared(const void* header, size_t header_len, std::shared_ptr<const std::string> payload) {
  if (fd_ < 0 || close_requested_ || would_exceed(header_len + payload->size())) return false;
  spill_cork();  // a shared payload goes in the queue, behind what is corked
  queued(header_len + payload->size());
  out_.append_shared(server_.pool_, header, header_len, std::move(payload));
  mark_dirty();
  return true;
}

// The cork: while a socket's own input is being handled, what it sends
// collects in the loop's cork buffer, and is written right after the
// handler returns (uncork), with one write() and no trip through the
// write queue, the buffer pool or the end-of-turn flush list. Only what the
// kernel does not take goes to the queue. An echo or a request-reply costs
// one system call and no buffer of its own; sends to other sockets (a
// broadcast) still queue and leave at the end of the turn, coalesced.
bool Socket::corked() const noexcept {
  return server_.corked_ == this;
}

bool Socket::cork_takes(size_t n) {
  if (!corked()) return false;
  if (server_.cork_.size() + n <= kCorkLimit) return true;
  spill_cork();  // a large reply goes to the queue once, not through the cork too
  return false;
}

void Socket::spill_cork() {
  if (!corked()) return;
  server_.corked_ = nullptr;
  std::string& cork = server_.cork_;
  if (!cork.empty()) {
    out_.append(server_.pool_, cork.data(), cork.size());
    queued(cork.size());
    mark_dirty();
    cork.clear();
  }
}

void Socket::uncork() {
  server_.corked_ = nullptr;
  std::string& cork = server_.cork_;
  if (cork.empty()) return;
  if (fd_ < 0) {  // aborted while corked: nothing to say to anyone
    cork.clear();
    return;
  }
  size_t done = 0;
  ssize_t n = ::write(fd_, cork.data(), cork.size());
  if (n > 0) done = static_cast<size_t>(n);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    const int error = errno;
    cork.clear();
    abort(error);
    return;
  }
  if (done < cork.size()) {
    // The kernel's buffer is full: the rest waits in the queue for EPOLLOUT.
    out_.append(server_.pool_, cork.data() + done, cork.size() - done);
    queued(cork.size() - done);
    mark_dirty();
  }
  cork.clear();
  // The buffer keeps its capacity for the next socket, within reason.
  if (cork.capacity() > 2 * kCorkLimit) std::string().swap(cork);
}

void Socket::mark_dirty() {
  if (!dirty_) {
    dirty_ = true;
    server_.dirty_.push_back(this);
  }
}

void Socket::update_interest() {
  bool want = !wire().empty();
  if (want != want_write_ && fd_ >= 0) {
    want_write_ = want;
    loop().modify_fd(fd_, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), this);
  }
}

// TLS: this turn's plaintext becomes records, so the many small frames of a
// turn share records the way they share one writev.
void Socket::encrypt_queued() {
  if (!out_.empty() && tls_->session.handshake_done()) {
    std::string cipher = server_.pool_.take();
    size_t plain = out_.size();
    out_.drain(server_.pool_, [&](const char* d, size_t n) {
      tls_->session.encrypt(reinterpret_cast<const uint8_t*>(d), n, cipher);
    });
    server_.queued_bytes_.sub(plain);
    queued(cipher.size());
    tls_->wire.append_owned(std::move(cipher));
  }
  if (close_requested_ && out_.empty() && !tls_->close_sent) {
    tls_->close_sent = true;  // RFC 8446 §6.1: say we are done before the TCP FIN
    std::string alert;
    tls_->session.close_notify(alert);
    queued(alert.size());
    tls_->wire.append_owned(std::move(alert));
  }
}

void Socket::flush() {
  if (fd_ < 0) return;
  if (tls_) encrypt_queued();
  OutQueue& q = wire();
  bool had_data = !q.empty();
  while (!q.empty()) {
    ssize_t n = q.write_to(fd_, server_.pool_);
    if (n < 0) {
      abort(static_cast<int>(-n));
      return;
    }
    if (n == 0) break;  // the kernel's buffer is full: wait for EPOLLOUT
    server_.queued_bytes_.sub(static_cast<size_t>(n));
  }
  if (q.empty() && out_.empty()) {
    if (close_requested_ && !lingering_) {
      // Everything we had to say is out: half-close and drain (see close_after_flush).
      ::shutdown(fd_, SHUT_WR);
      lingering_ = true;
    } else if (had_data && handler_) {
      handler_->on_drained(*this);
      if (fd_ < 0) return;
    }
  }
  update_interest();
}

void Socket::close_after_flush() {
  if (fd_ < 0 || close_requested_) return;
  close_requested_ = true;
  // The deadline runs from now, not from when the queue drains: a peer that
  // never reads would otherwise hold a closing socket, and its queue, for as
  // long as it liked (no other deadline covers a closing socket).
  linger_deadline_ = loop().now() + server_.options_.linger_timeout;
  mark_dirty();  // flush() at the end of the turn half-closes once the queue is empty
}

void Socket::abort(int error) {
  if (fd_ < 0) return;
  finish_close(error);
}

void Socket::finish_close(int error) {
  loop().remove_fd(fd_);
  ::close(fd_);
  fd_ = -1;
  server_.queued_bytes_.sub(queued_amount());  // the cork was never counted
  out_.clear(server_.pool_);
  if (tls_) tls_->wire.clear(server_.pool_);
  tls_.reset();
  server_.unlink(this);
  // The handler may drop its last reference to us; we are freed only
  // after this loop turn, by the server's graveyard.
  auto handler = std::move(handler_);
  if (handler) handler->on_transport_closed(*this, error);
  server_.retire(this);
}

void Socket::on_io(uint32_t events) {
  if (fd_ < 0) return;  // closed earlier in this turn; freed at its end
  if (events & EPOLLOUT) {
    flush();
    if (fd_ < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    // One read per readiness event: level-triggered epoll brings us back
    // if more is waiting, so one busy peer cannot hold the loop.
    uint8_t* buf = loop().read_buffer();
    ssize_t n = ::read(fd_, buf, Loop::kReadBufferSize);
    if (n > 0) {
      if (lingering_) return;  // draining before close: input is discarded
      if (tls_) {
        on_tls_data(buf, static_cast<size_t>(n));
      } else {
        const bool cork = out_.empty() && !close_requested_;  // else replies queue behind what waits
        if (cork) server_.corked_ = this;
        handler_->on_data(*this, buf, static_cast<size_t>(n));
        if (cork) uncork();
      }
      retired_handler_.reset();
    } else if (n == 0) {
      finish_close(0);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      finish_close(errno);
    }
  }
}

// Decrypts, sends what the handshake wants sent, and hands the plaintext
// to the handler. Returns false if the connection is failing.
bool Socket::on_tls_data(uint8_t* data, size_t len) {
  std::string& plain = server_.tls_plain_;
  plain.clear();
  tls::Result r = tls_->session.feed_ciphertext(data, len, plain);
  std::string pending;
  tls_->session.take_pending_ciphertext(pending);
  if (!pending.empty()) {
    queued(pending.size());
    tls_->wire.append_owned(std::move(pending));
    mark_dirty();
  }
  if (r == tls::Result::error) {
    log_info("tls: {}:{}: {} ({})", remote_address_, remote_port_, tls::describe(tls_->session.error()),
             tls_->session.error_detail());
    if (tls_->session.error() == tls::TlsError::plain_http) {
      // A browser or curl pointed at https:// on a plain port's twin: say so in
      // plain text, the only language the peer speaks.
      static const std::string kAnswer = [] {
        std::string body = "this port speaks TLS: use https:// or wss://\n";
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      }();
      queued(kAnswer.size());
      tls_->wire.append(server_.pool_, kAnswer.data(), kAnswer.size());
    }
    close_after_flush();
    return false;
  }
  if (!plain.empty()) {
    handler_->on_data(*this, reinterpret_cast<uint8_t*>(plain.data()), plain.size());
    if (fd_ < 0) return false;
  }
  if (r == tls::Result::closed) close_after_flush();
  return true;
}

// ---------------------------------------------------------------- IoServer

struct IoServer::Listener final : IoHandler {
  IoServer& server;
  int fd;
  std::shared_ptr<tls::TlsContext> tls;
  Listener(IoServer& s, int f, std::shared_ptr<tls::TlsContext> t) : server(s), fd(f), tls(std::move(t)) {}
  ~Listener() {
    server.loop_.remove_fd(fd);
    ::close(fd);
  }
  void on_io(uint32_t) override { server.accept_from(fd, tls.get()); }
};

IoServer::IoServer(Loop& loop, IoOptions options, HandlerFactory factory)
    : loop_(loop), options_(options), factory_(std::move(factory)) {
  if (options_.process_connections == nullptr) options_.process_connections = &own_process_count_;
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  loop_.add_before_wait([this] { flush_dirty(); });
  sweep_timer_ = loop_.add_timer(
      options_.sweep_interval, [this] { sweep(); }, options_.sweep_interval);
}

IoServer::~IoServer() {
  loop_.cancel_timer(sweep_timer_);
  listeners_.clear();
  abort_all();
  flush_dirty();
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

uint16_t IoServer::listen(const ListenOptions& options) {
  int fd = open_listener(options);
  auto l = std::make_unique<Listener>(*this, fd, options.tls);
  loop_.add_fd(fd, EPOLLIN, l.get());
  listeners_.push_back(std::move(l));
  return local_port(fd);
}

void IoServer::stop_accepting() {
  listeners_.clear();
}

void IoServer::accept_from(int listen_fd, tls::TlsContext* tls) {
  // Bounded per wake-up so a connection storm cannot starve open sockets.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the pending connection would wake us forever.
        // Spend the reserve descriptor to accept and close it, then re-arm.
        log_warn("io: accept: {} (limit reached at {} connections); shedding a connection",
                 std::strerror(errno), connection_count());
        if (reserve_fd_ >= 0) {
          ::close(reserve_fd_);
          int shed = ::accept(listen_fd, nullptr, nullptr);
          if (shed >= 0) ::close(shed);
          reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
        log_warn("io: accept: {}", std::strerror(errno));
      }
      return;
    }
    uint16_t port = 0;
    std::string remote = address_string(addr, &port);
    // A margin above max_connections is still accepted so the HTTP layer can
    // answer 503; past it, the connection is closed at once.
    if (process_connection_count() >= options_.max_connections + 64) {
      log_warn("io: refusing {}:{}: {} connections open", remote, port, connection_count());
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* s = new Socket(*this, fd, std::move(remote), port);
    if (tls != nullptr) s->tls_ = std::make_unique<Socket::Tls>(*tls);
    s->next_ = head_;
    if (head_) head_->prev_ = s;
    head_ = s;
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    options_.process_connections->fetch_add(1, std::memory_order_relaxed);
    accepted_total_.add();
    loop_.add_fd(fd, EPOLLIN | EPOLLRDHUP, s);
    s->handler_ = factory_(*s);
  }
}

void IoServer::unlink(Socket* s) {
  if (s->prev_) s->prev_->next_ = s->next_;
  if (s->next_) s->next_->prev_ = s->prev_;
  if (head_ == s) head_ = s->next_;
  s->prev_ = s->next_ = nullptr;
  count_.store(count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  options_.process_connections->fetch_sub(1, std::memory_order_relaxed);
}

void IoServer::retire(Socket* s) {
  graveyard_.push_back(s);
}

void IoServer::flush_dirty() {
  // Flushing may make handlers send more (on_drained) and so grow the list.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Socket* s = dirty_[i];
    s->dirty_ = false;
    s->flush();
  }
  dirty_.clear();
  for (Socket* s : graveyard_) delete s;
  graveyard_.clear();
}

void IoServer::sweep() {
  auto now = loop_.now();
  for (Socket* s = head_; s != nullptr;) {
    Socket* next = s->next_;  // s may close during its sweep
    if (s->close_requested_) {
      if (now >= s->linger_deadline_) s->abort(0);
    } else if (s->handler_) {
      s->handler_->on_sweep(*s, now);
    }
    s = next;
  }
}

void IoServer::shutdown_all() {
  for (Socket* s = head_; s != nullptr;) {
    Socket* next = s->next_;
    if (s->handler_ && !s->close_requested_) s->handler_->on_shutdown(*s);
    s = next;
  }
}

void IoServer::abort_all() {
  while (head_ != nullptr) head_->abort(ECANCELED);
}

}  // namespace windlass::detail
