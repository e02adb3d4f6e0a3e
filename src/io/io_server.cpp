#include "io/io_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "log.hpp"

namespace windlass::detail {

// What a connection's transport costs: the idle-connection figure in
// bench/RESULTS.md is this plus the WebSocket layer's slot. Checked where
// the layout is known (libstdc++ on x86-64).
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(Socket) <= 72, "Socket grew: update bench/RESULTS.md's memory table");
// What a socket holds while it has bytes queued or in flight (a burst of
// handshakes on io_uring holds one per handshake until its 101 is sent).
static_assert(sizeof(Socket::Extra) <= 128, "Socket::Extra grew: a burst of handshakes holds one each");
#endif

// ---------------------------------------------------------------- PeerAddress

PeerAddress PeerAddress::from(const sockaddr_storage& addr) noexcept {
  PeerAddress p;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    p.ip[10] = 0xff;
    p.ip[11] = 0xff;
    std::memcpy(&p.ip[12], &in->sin_addr, 4);
    p.port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    std::memcpy(p.ip.data(), &in6->sin6_addr, 16);
    p.port = ntohs(in6->sin6_port);
  }
  return p;
}

size_t PeerAddress::format(char* buf) const noexcept {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!known()) {
    std::memcpy(buf, "unknown", 8);
    return 7;
  }
  const char* r = std::memcmp(ip.data(), kMapped, 12) == 0
                      ? ::inet_ntop(AF_INET, &ip[12], buf, static_cast<socklen_t>(kTextSize))
                      : ::inet_ntop(AF_INET6, ip.data(), buf, static_cast<socklen_t>(kTextSize));
  return r == nullptr ? 0 : std::strlen(buf);
}

std::string PeerAddress::to_string() const {
  char buf[kTextSize];
  return std::string(buf, format(buf));
}

// ---------------------------------------------------------------- Socket

Socket::Socket(IoServer& server, int fd, const PeerAddress& peer) : server_(&server), fd_(fd), peer_(peer) {}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

Loop& Socket::loop() const noexcept {
  return server_->loop_;
}

LoopResources& Socket::resources() const noexcept {
  return server_->res_;
}

Uring* Socket::uring() const noexcept { return server_->uring_; }

// Replies bigger than this bypass the cork (see Socket::uncork): one copy
// into the queue instead of two.
constexpr size_t kCorkLimit = 64 * 1024;

size_t Socket::buffered_amount() const noexcept {
  return queued_amount() + (corked() ? server_->res_.cork.size() : 0);
}

bool Socket::would_exceed(size_t n) const noexcept {
  return buffered_amount() + n > server_->options_.max_send_queue;
}

void Socket::set_buffered_mirror(std::atomic<uint32_t>* mirror) noexcept {
  mirror_ = mirror;
  if (mirror_ != nullptr) mirror_->store(0, std::memory_order_release);
}

void Socket::queued(size_t n) noexcept {
  queued_ += static_cast<uint32_t>(n);
  server_->queued_bytes_.add(n);
  if (mirror_ != nullptr) {
    mirror_->store(static_cast<uint32_t>(std::min<size_t>(queued_, std::numeric_limits<uint32_t>::max())),
                   std::memory_order_release);
  }
}

void Socket::unqueued(size_t n) noexcept {
  queued_ -= static_cast<uint32_t>(n);
  server_->queued_bytes_.sub(n);
  if (mirror_ != nullptr) {
    mirror_->store(static_cast<uint32_t>(std::min<size_t>(queued_, std::numeric_limits<uint32_t>::max())),
                   std::memory_order_release);
  }
}

Socket::Extra& Socket::extra() {
  if (!extra_) extra_ = server_->take_extra();
  return *extra_;
}

OutQueue& Socket::queue() {
  return extra().out;
}

OutQueue* Socket::wire() noexcept {
  if (!extra_) return nullptr;
  return extra_->tls ? &extra_->tls->wire : &extra_->out;
}

// Gives the Extra back once nothing in it is needed: the queue is empty,
// no drain is awaited, the socket is not closing and speaks no TLS.
void Socket::release_extra() {
  if (extra_ && extra_->out.empty() && !extra_->tls && extra_->drain_below == 0 && !close_requested_) {
    server_->give_extra(std::move(extra_));
  }
}

void Socket::notify_drained_below(size_t below) noexcept {
  uint32_t b = static_cast<uint32_t>(std::min<size_t>(below, std::numeric_limits<uint32_t>::max()));
  extra().drain_below = b == 0 ? 1 : b;
  mark_dirty();  // flush() decides, after this turn's bytes have had their chance to leave
}

bool Socket::write(const void* data, size_t n) {
  if (fd_ < 0 || close_requested_ || would_exceed(n)) return false;
  if (cork_takes(n)) {
    server_->res_.cork.append(static_cast<const char*>(data), n);
    return true;
  }
  queue().append(server_->res_.pool, data, n);
  queued(n);
  mark_dirty();
  return true;
}

bool Socket::write2(const void* a, size_t an, const void* b, size_t bn) {
  if (fd_ < 0 || close_requested_ || would_exceed(an + bn)) return false;
  if (cork_takes(an + bn)) {
    std::string& cork = server_->res_.cork;
    cork.append(static_cast<const char*>(a), an);
    cork.append(static_cast<const char*>(b), bn);
    return true;
  }
  queue().append(server_->res_.pool, a, an, b, bn);
  queued(an + bn);
  mark_dirty();
  return true;
}

bool Socket::write_shared(std::shared_ptr<const std::string> payload) {
  if (fd_ < 0 || close_requested_ || would_exceed(payload->size())) return false;
  spill_cork();  // a shared payload goes in the queue, behind what is corked
  queued(payload->size());
  queue().append_shared(server_->res_.pool, nullptr, 0, std::move(payload));
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
  return server_->res_.corked == this;
}

bool Socket::cork_takes(size_t n) {
  if (!corked()) return false;
  if (server_->res_.cork.size() + n <= kCorkLimit) return true;
  spill_cork();  // a large reply goes to the queue once, not through the cork too
  return false;
}

void Socket::spill_cork() {
  if (!corked()) return;
  server_->res_.corked = nullptr;
  std::string& cork = server_->res_.cork;
  if (!cork.empty()) {
    queue().append(server_->res_.pool, cork.data(), cork.size());
    queued(cork.size());
    mark_dirty();
    cork.clear();
  }
}

void Socket::uncork() {
  server_->res_.corked = nullptr;
  std::string& cork = server_->res_.cork;
  if (cork.empty()) return;
  if (fd_ < 0) {  // aborted while corked: nothing to say to anyone
    cork.clear();
    return;
  }
  // On io_uring, only a large reply with nothing ahead of it is written at
  // once (IoOptions::direct_send_min); queued_ counts bytes in flight there.
  const size_t direct_min = server_->options_.direct_send_min;
  const bool write_now =
      server_->uring_ == nullptr || (direct_min != 0 && cork.size() >= direct_min && queued_ == 0);
  if (!write_now) {
    // The cork's buffer itself becomes the queue (no copy), and its send is
    // queued now, to leave with the rest of this turn's in one
    // io_uring_enter. The cork takes a pooled buffer in exchange.
    const size_t n = cork.size();
    queue().append_owned(std::move(cork));
    queued(n);
    cork = server_->res_.pool.take();
    send_queued();
    return;
  }
  if (server_->uring_ != nullptr) ++server_->direct_sends_;
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
    // The kernel's buffer is full: the rest waits in the queue (epoll: for
    // EPOLLOUT; io_uring: in a send that waits for room).
    queue().append(server_->res_.pool, cork.data() + done, cork.size() - done);
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
    server_->dirty_.push_back(this);
  }
}

void Socket::update_interest() {
  if (server_->uring_ != nullptr) return;  // a send in flight waits in the kernel instead of EPOLLOUT
  const OutQueue* w = wire();
  const bool want = w != nullptr && !w->empty();
  if (want != want_write_ && fd_ >= 0) {
    want_write_ = want;
    loop().modify_fd(fd_, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), this);
  }
}

// TLS: this turn's plaintext becomes records, so the many small frames of a
// turn share records the way they share one writev.
void Socket::encrypt_queued() {
  LoopResources& res = server_->res_;
  Tls& t = *extra_->tls;
  OutQueue& out = extra_->out;
  if (!out.empty() && t.session.handshake_done()) {
    std::string cipher = res.pool.take();
    const size_t plain = out.size();
    out.drain(res.pool, [&](const char* d, size_t n) {
      t.session.encrypt(reinterpret_cast<const uint8_t*>(d), n, cipher);
    });
    unqueued(plain);
    queued(cipher.size());
    t.wire.append_owned(std::move(cipher));
  }
  if (close_requested_ && out.empty() && !t.close_sent) {
    t.close_sent = true;  // RFC 8446 §6.1: say we are done before the TCP FIN
    std::string alert;
    t.session.close_notify(alert);
    queued(alert.size());
    t.wire.append_owned(std::move(alert));
  }
}

void Socket::flush() {
  if (fd_ < 0) return;
  if (extra_ && extra_->tls) encrypt_queued();
  Uring* u = server_->uring_;
  if (u != nullptr) {
    send_queued();
  } else if (OutQueue* q = wire()) {
    while (!q->empty()) {
      ssize_t n = q->write_to(fd_, server_->res_.pool);
      if (n < 0) {
        abort(static_cast<int>(-n));
        return;
      }
      if (n == 0) break;  // the kernel's buffer is full: wait for EPOLLOUT
      unqueued(static_cast<size_t>(n));
    }
  }
  const bool empty = queued_ == 0;  // on io_uring, bytes in flight still count
  if (empty && close_requested_ && !lingering_) {
    // Everything we had to say is out: half-close and drain (see close_after_flush).
    // A system call on io_uring too: the kernel runs IORING_OP_SHUTDOWN on
    // a worker thread and looks the descriptor up only there, maybe after
    // this socket's close and the number's reuse by the next accept.
    ::shutdown(fd_, SHUT_WR);
    lingering_ = true;
  } else if (extra_ && extra_->drain_below != 0 && queued_ < extra_->drain_below && !close_requested_ &&
             handler_ != nullptr) {
    extra_->drain_below = 0;
    handler_->on_drained(*this);
    if (fd_ < 0) return;
  }
  update_interest();
  if (empty) release_extra();
}

void Socket::close_after_flush() {
  if (fd_ < 0 || close_requested_) return;
  close_requested_ = true;
  // The deadline runs from now, not from when the queue drains: a peer that
  // never reads would otherwise hold a closing socket, and its queue, for as
  // long as it liked (no other deadline covers a closing socket).
  extra().linger_deadline_ms =
      server_->clock_ms() + static_cast<uint32_t>(server_->options_.linger_timeout.count());
  mark_dirty();  // flush() at the end of the turn half-closes once the queue is empty
}

void Socket::abort(int error) {
  if (fd_ < 0) return;
  finish_close(error);
}

void Socket::drop_extra() {
  extra_->out.clear(server_->res_.pool);
  extra_->tls.reset();
  extra_->drain_below = 0;
  server_->give_extra(std::move(extra_));
}

void Socket::finish_close(int error) {
  if (Uring* u = server_->uring_) {
    // What is in the kernel is cancelled there; its last completions free
    // the socket (maybe_retire). The close is queued behind the cancels, so
    // the descriptor's number is not reused before they have run.
    auto cancel = [&](UringOp op) {
      io_uring_sqe* sqe = u->sqe();
      io_uring_prep_cancel64(sqe, Uring::user_data(this, op), 0);
      io_uring_sqe_set_data64(sqe, 0);
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    };
    if (recv_armed_) cancel(UringOp::recv);
    if (send_inflight_) cancel(UringOp::send);
    // Out of the file table before the close: a registered file holds the
    // socket open. (In a teardown off the loop's thread nothing is
    // submitted: the table lets go of it when the ring goes, just after.)
    if (registered_ && u->can_submit()) u->unregister_file(fd_);
    registered_ = false;
    if (u->can_submit()) {
      io_uring_sqe* sqe = u->sqe();
      io_uring_prep_close(sqe, fd_);
      io_uring_sqe_set_data64(sqe, 0);
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    } else {
      ::close(fd_);  // teardown off the loop's thread: nothing will submit a queued close
    }
  } else {
    loop().remove_fd(fd_);
    ::close(fd_);
  }
  fd_ = -1;
  if (corked()) server_->res_.corked = nullptr;
  unqueued(queued_);  // the cork was never counted
  // Bytes the kernel may still be reading stay where they are until the
  // send's completion says it has stopped.
  if (extra_ && !send_inflight_) drop_extra();
  mirror_ = nullptr;
  server_->count_.store(server_->count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  server_->options_.process_connections->fetch_sub(1, std::memory_order_relaxed);
  // The handler may free itself once told; we are freed only after this
  // loop turn, by the server's graveyard.
  SocketHandler* handler = handler_;
  handler_ = nullptr;
  if (handler != nullptr) handler->on_transport_closed(*this, error);
  if (server_->uring_ != nullptr) {
    maybe_retire();
  } else {
    server_->retire(this);
  }
}

// io_uring: a closed socket is freed once the kernel can name it in no
// completion any more.
void Socket::maybe_retire() {
  if (fd_ >= 0 || recv_armed_ || send_inflight_ || retired_) return;
  if (extra_) drop_extra();
  server_->retire(this);
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
    uint8_t* buf = server_->res_.read_buffer.get();
    ssize_t n = ::read(fd_, buf, LoopResources::kReadBufferSize);
    if (n > 0) {
      on_received(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      finish_close(0);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      finish_close(errno);
    }
  }
}

void Socket::on_received(uint8_t* data, size_t len) {
  if (lingering_) return;  // draining before close: input is discarded
  if (extra_ && extra_->tls) {
    on_tls_data(data, len);
  } else {
    const bool cork = queued_ == 0 && !close_requested_;  // else replies queue behind what waits
    if (cork) server_->res_.corked = this;
    handler_->on_data(*this, data, len);
    if (cork) uncork();
  }
}

// ---- io_uring

void Socket::arm_recv() {
  io_uring_sqe* sqe = server_->uring_->sqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT | (registered_ ? IOSQE_FIXED_FILE : 0);
  sqe->buf_group = server_->buffers_->group();
  io_uring_sqe_set_data64(sqe, Uring::user_data(this, UringOp::recv));
  recv_armed_ = true;
}

// One send per socket in the kernel at a time, so bytes leave in order;
// what is queued meanwhile goes in the next one. Without MSG_DONTWAIT: a
// full socket buffer makes the kernel wait for room (the io_uring form of
// EPOLLOUT), and the completion says how much it took.
void Socket::send_queued() {
  if (send_inflight_ || fd_ < 0) return;
  OutQueue* q = wire();
  if (q == nullptr || q->empty()) return;
  iovec iov[Extra::kSendPieces];
  const int pieces = q->start_send(iov, Extra::kSendPieces);
  io_uring_sqe* sqe = server_->uring_->sqe();
  if (pieces == 1) {
    io_uring_prep_send(sqe, fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);  // the entry holds both
  } else {
    Extra& e = *extra_;
    if (!e.vector) e.vector = std::make_unique<Extra::SendVector>();
    Extra::SendVector& v = *e.vector;
    std::copy_n(iov, pieces, v.iov);
    v.msg = msghdr{};
    v.msg.msg_iov = v.iov;
    v.msg.msg_iovlen = static_cast<size_t>(pieces);
    io_uring_prep_sendmsg(sqe, fd_, &v.msg, MSG_NOSIGNAL);
  }
  if (registered_) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, Uring::user_data(this, UringOp::send));
  send_inflight_ = true;
}

void Socket::on_recv_done(void* socket, int32_t res, uint32_t flags) {
  auto* s = static_cast<Socket*>(socket);
  IoServer& server = *s->server_;
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) s->recv_armed_ = false;
  uint8_t* data = (flags & IORING_CQE_F_BUFFER) != 0 ? server.buffers_->take(flags, res) : nullptr;
  if (s->fd_ < 0) {  // closed: what was still arriving is dropped
    server.buffers_->release(flags);
    s->maybe_retire();
    return;
  }
  if (res > 0) {
    s->on_received(data, static_cast<size_t>(res));
    server.buffers_->release(flags);  // the handler has copied what it keeps
    if (s->fd_ < 0) {
      s->maybe_retire();
    } else if (!more) {
      s->arm_recv();  // the kernel ended the multishot (a full completion queue): go on
    }
  } else if (res == 0) {
    server.buffers_->release(flags);
    s->finish_close(0);
  } else if (res == -ENOBUFS) {
    // This turn's receives used every buffer. They are back by the next
    // turn's enter, which re-arms this one; the bytes wait in the kernel.
    ++server.receive_rearms_;
    s->arm_recv();
  } else if (res == -EINTR || res == -EAGAIN) {
    if (!more) s->arm_recv();
  } else {
    s->finish_close(-res);
  }
}

void Socket::on_send_done(void* socket, int32_t res, uint32_t) {
  auto* s = static_cast<Socket*>(socket);
  LoopResources& res_ = s->server_->res_;
  s->send_inflight_ = false;
  OutQueue* q = s->wire();
  if (s->fd_ < 0) {  // closed while sending: the queue can go now
    if (q != nullptr) q->finish_send(res_.pool, 0);
    s->maybe_retire();
    return;
  }
  if (res < 0) {
    q->finish_send(res_.pool, 0);
    if (res == -EINTR || res == -EAGAIN) {
      s->mark_dirty();
    } else {
      s->abort(-res);
    }
    return;
  }
  // A partial send leaves the rest at the queue's head, sent first next.
  q->finish_send(res_.pool, static_cast<size_t>(res));
  s->unqueued(static_cast<size_t>(res));
  s->flush();
}

// Decrypts, sends what the handshake wants sent, and hands the plaintext
// to the handler. Returns false if the connection is failing.
bool Socket::on_tls_data(uint8_t* data, size_t len) {
  std::string& plain = server_->res_.tls_plain;
  plain.clear();
  tls::Result r = extra_->tls->session.feed_ciphertext(data, len, plain);
  std::string pending;
  extra_->tls->session.take_pending_ciphertext(pending);
  if (!pending.empty()) {
    queued(pending.size());
    extra_->tls->wire.append_owned(std::move(pending));
    mark_dirty();
  }
  if (r == tls::Result::error) {
    char peer[PeerAddress::kTextSize];
    peer_.format(peer);
    log_info("tls: {}:{}: {} ({})", peer, peer_.port, tls::describe(extra_->tls->session.error()),
             extra_->tls->session.error_detail());
    if (extra_->tls->session.error() == tls::TlsError::plain_http && !extra_->tls->plain_answer->empty()) {
      // A browser or curl pointed at https:// on a plain port's twin: the
      // layer above gave us what to say, in the only language the peer speaks.
      const std::string& answer = *extra_->tls->plain_answer;
      queued(answer.size());
      extra_->tls->wire.append(server_->res_.pool, answer.data(), answer.size());
    }
    close_after_flush();
    return false;
  }
  if (!plain.empty()) {
    // The padding promise of SocketHandler::on_data holds here too.
    plain.reserve(plain.size() + LoopResources::kReadBufferPadding);
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
  std::shared_ptr<const std::string> plain_answer;
  // io_uring: its multishot accept (or, out of descriptors, its poll),
  // queued or in the kernel.
  Uring::Queued accept_sqe;
  bool accept_armed = false;
  bool polling = false;  // waiting for a pending connection before accepting again
  bool closing = false;
  Listener(IoServer& s, int f, std::shared_ptr<tls::TlsContext> t, std::string answer)
      : server(s), fd(f), tls(std::move(t)), plain_answer(std::make_shared<const std::string>(std::move(answer))) {}
  ~Listener() {
    if (server.uring_ == nullptr) server.loop_.remove_fd(fd);
    if (fd >= 0) ::close(fd);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  void on_io(uint32_t) override { server.accept_from(fd, *this); }
};

IoServer::IoServer(Loop& loop, LoopResources& resources, IoOptions options, HandlerFactory factory)
    : loop_(loop),
      res_(resources),
      uring_(uring_of(loop)),
      options_(options),
      factory_(std::move(factory)),
      epoch_(Loop::Clock::now()),
      sockets_(sizeof(Socket), alignof(Socket), 256) {
  if (options_.process_connections == nullptr) options_.process_connections = &own_process_count_;
  if (uring_ != nullptr) {
    buffers_ = &uring_->receive_buffers(options_.receive_buffers);
    // Room for every connection this server may hold, the margin above it
    // that adopt() still accepts, and the process's other descriptors.
    if (options_.registered_files) {
      const size_t slots = std::min<size_t>(options_.max_connections + 2048, std::numeric_limits<unsigned>::max());
      files_ = uring_->use_registered_files(static_cast<unsigned>(slots));
    }
    uring_->set_handler(UringOp::recv, &Socket::on_recv_done);
    uring_->set_handler(UringOp::send, &Socket::on_send_done);
    uring_->set_handler(UringOp::accept, &IoServer::on_accept_done);
  } else if (!res_.read_buffer) {
    res_.read_buffer.reset(new uint8_t[LoopResources::kReadBufferSize + LoopResources::kReadBufferPadding]());
  }
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  loop_.add_before_wait([this] { flush_dirty(); });
  sweep_timer_ = loop_.add_timer(
      options_.sweep_interval, [this] { sweep(); }, options_.sweep_interval);
}

IoServer::~IoServer() {
  loop_.cancel_timer(sweep_timer_);
  stop_accepting();
  abort_all();
  if (uring_ != nullptr) {
    settle();
    // What still waits for completions nobody will read (teardown on
    // another thread than the loop's, after that thread ended: the kernel
    // cancelled its operations when it exited) is freed now.
    sockets_.for_each_live([](void* p) {
      auto* s = static_cast<Socket*>(p);
      s->recv_armed_ = false;
      s->send_inflight_ = false;
      s->maybe_retire();
    });
  }
  flush_dirty();
  closing_listeners_.clear();
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

void IoServer::settle() {
  if (!uring_->can_submit()) return;
  const auto until = Loop::Clock::now() + std::chrono::seconds(1);
  while ((sockets_.live() > graveyard_.size() || !closing_listeners_.empty()) && Loop::Clock::now() < until) {
    uring_->reap_io(10);
  }
}

uint32_t IoServer::clock_ms() const noexcept {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now() - epoch_).count());
}

uint16_t IoServer::listen(const ListenerOptions& options) {
  int fd = open_listener(options);
  auto l = std::make_unique<Listener>(*this, fd, options.tls, options.plain_text_answer);
  if (uring_ != nullptr) {
    arm_accept(*l);
  } else {
    loop_.add_fd(fd, EPOLLIN, l.get());
  }
  listeners_.push_back(std::move(l));
  return local_port(fd);
}

void IoServer::stop_accepting() {
  for (auto& l : listeners_) close_listener(std::move(l));
  listeners_.clear();
}

void IoServer::close_listener(std::unique_ptr<Listener> l) {
  if (uring_ == nullptr || !l->accept_armed) return;  // ~Listener closes it
  l->closing = true;
  if (uring_->withdraw(l->accept_sqe)) {
    l->accept_armed = false;  // never reached the kernel
    return;
  }
  io_uring_sqe* sqe = uring_->sqe();
  io_uring_prep_cancel64(sqe, Uring::user_data(l.get(), UringOp::accept), 0);
  io_uring_sqe_set_data64(sqe, 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  // The kernel's accept holds the file, not the number: closing now is safe.
  ::close(l->fd);
  l->fd = -1;
  closing_listeners_.push_back(std::move(l));  // until its accept's last completion
}

void IoServer::arm_accept(Listener& l) {
  io_uring_sqe* sqe = uring_->sqe();
  io_uring_prep_multishot_accept(sqe, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, Uring::user_data(&l, UringOp::accept));
  l.accept_sqe = uring_->queued(sqe);
  l.accept_armed = true;
}

// One completion per connection, in the order they come, mixed with the
// loop's other completions: no storm of connections can starve open ones,
// which is what epoll's bound of 64 accepts per wake-up is for.
void IoServer::on_accept_done(void* listener, int32_t res, uint32_t flags) {
  auto* l = static_cast<Listener*>(listener);
  IoServer& server = l->server;
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) l->accept_armed = false;
  if (l->closing) {
    if (res >= 0 && !l->polling) ::close(res);  // accepted just before the cancel: we stopped accepting
    if (!more) {
      auto& v = server.closing_listeners_;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it->get() == l) {
          v.erase(it);
          break;
        }
      }
    }
    return;
  }
  if (l->polling) {
    l->polling = false;  // a connection waits (or the poll failed): accept again
  } else if (res >= 0) {
    // Multishot accept has nowhere to put each peer's address.
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(res, reinterpret_cast<sockaddr*>(&addr), &len) != 0) addr.ss_family = AF_UNSPEC;
    server.adopt(res, addr, *l);
  } else if (res == -EMFILE || res == -ENFILE) {
    log_warn("io: accept: {} (limit reached at {} connections); shedding a connection", std::strerror(-res),
             server.connection_count());
    server.shed_one(l->fd);
    // The kernel fails an accept for want of a descriptor before it looks
    // for a connection: armed again now, it would fail at once, every turn.
    // A poll waits for the next connection instead (epoll's level-triggered
    // readiness, which sheds one pending connection per wake-up too).
    io_uring_sqe* sqe = server.uring_->sqe();
    io_uring_prep_poll_add(sqe, l->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, Uring::user_data(l, UringOp::accept));
    l->accept_sqe = server.uring_->queued(sqe);
    l->accept_armed = true;
    l->polling = true;
    return;
  } else if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
    log_warn("io: accept: {}", std::strerror(-res));
  }
  if (!l->accept_armed) server.arm_accept(*l);
}

void IoServer::shed_one(int listen_fd) {
  // Out of descriptors: the pending connection would wake us forever.
  // Spend the reserve descriptor to accept and close it, then re-arm.
  ++accepts_refused_;
  if (reserve_fd_ < 0) return;
  ::close(reserve_fd_);
  int shed = ::accept(listen_fd, nullptr, nullptr);
  if (shed >= 0) ::close(shed);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void IoServer::accept_from(int listen_fd, Listener& listener) {
  // Bounded per wake-up so a connection storm cannot starve open sockets.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        log_warn("io: accept: {} (limit reached at {} connections); shedding a connection",
                 std::strerror(errno), connection_count());
        shed_one(listen_fd);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
        log_warn("io: accept: {}", std::strerror(errno));
      }
      return;
    }
    adopt(fd, addr, listener);
  }
}

void IoServer::adopt(int fd, const sockaddr_storage& addr, Listener& listener) {
  const PeerAddress peer = PeerAddress::from(addr);
  // A margin above max_connections is still accepted so the HTTP layer can
  // answer 503; past it, the connection is closed at once.
  if (process_connection_count() >= options_.max_connections + 64) {
    log_warn("io: refusing {}:{}: {} connections open", peer.to_string(), peer.port, connection_count());
    ::close(fd);
    return;
  }
  // TCP_NODELAY comes from the listener (open_listener): Linux copies it to
  // every socket accepted from it, which saves a system call per accept.
  auto* s = new (sockets_.allocate()) Socket(*this, fd, peer);
  if (listener.tls != nullptr) s->extra().tls = std::make_unique<Socket::Tls>(*listener.tls, listener.plain_answer);
  count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  options_.process_connections->fetch_add(1, std::memory_order_relaxed);
  accepted_total_.add();
  if (uring_ != nullptr) {
    if (files_) s->registered_ = uring_->register_file(fd);
    s->arm_recv();
  } else {
    loop_.add_fd(fd, EPOLLIN | EPOLLRDHUP, s);
  }
  s->handler_ = factory_(*s);
}

void IoServer::retire(Socket* s) {
  s->retired_ = true;
  graveyard_.push_back(s);
}

std::unique_ptr<Socket::Extra> IoServer::take_extra() {
  if (extras_.empty()) return std::make_unique<Socket::Extra>();
  auto e = std::move(extras_.back());
  extras_.pop_back();
  return e;
}

void IoServer::give_extra(std::unique_ptr<Socket::Extra> extra) {
  // Kept for the next socket that needs one, up to a bound: a burst of
  // busy sockets does not pin its memory for good.
  constexpr size_t kMaxPooled = 1024;
  extra->out.clear(res_.pool);
  extra->drain_below = 0;
  extra->linger_deadline_ms = 0;
  if (extras_.size() < kMaxPooled) extras_.push_back(std::move(extra));
}

void IoServer::flush_dirty() {
  // Flushing may make handlers send more (on_drained) and so grow the list.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Socket* s = dirty_[i];
    s->dirty_ = false;
    s->flush();
  }
  dirty_.clear();
  for (Socket* s : graveyard_) {
    s->~Socket();
    sockets_.free(s);
  }
  graveyard_.clear();
}

void IoServer::sweep() {
  const uint32_t now_ms = clock_ms();
  const auto now = loop_.now();
  sockets_.for_each_live([&](void* p) {
    auto* s = static_cast<Socket*>(p);
    if (s->fd_ < 0) return;  // closed this turn, waiting in the graveyard
    if (s->close_requested_) {
      if (static_cast<int32_t>(now_ms - s->extra_->linger_deadline_ms) >= 0) s->abort(0);
    } else if (s->handler_ != nullptr) {
      s->handler_->on_sweep(*s, now);
    }
  });
}

void IoServer::shutdown_all() {
  sockets_.for_each_live([&](void* p) {
    auto* s = static_cast<Socket*>(p);
    if (s->fd_ >= 0 && s->handler_ != nullptr && !s->close_requested_) s->handler_->on_shutdown(*s);
  });
}

void IoServer::abort_all() {
  sockets_.for_each_live([&](void* p) {
    auto* s = static_cast<Socket*>(p);
    if (s->fd_ >= 0) s->abort(ECANCELED);
  });
}

}  // namespace windlass::detail
