// IoServer: listening sockets, accept, and the TCP connection (Socket)
// with its write queue, backpressure and lingering close. The layer of
// Ratchet's IoServer; it knows nothing of HTTP or WebSocket: a Socket hands
// the bytes it reads to its SocketHandler (an HTTP session, then a
// WebSocket connection), and writes the bytes it is given.
//
// On both of the loop's backends, with the same behaviour:
//
//   epoll     the listener and every socket are registered with epoll; a
//             readable socket is read once per turn into the loop's shared
//             receive buffer, queued bytes are written when it is writable
//   io_uring  a multishot accept per listener; a multishot receive per
//             socket into the loop's provided receive buffers (an idle
//             connection holds none); queued bytes leave as one send per
//             socket per turn, all submitted with the turn's one
//             io_uring_enter; closes go through the ring too (a lingering
//             close's shutdown stays a system call: see Socket::flush).
//             A socket closed while its receive or send is in the kernel is
//             cancelled there and freed only after their last completions.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/loop_resources.hpp"
#include "io/out_queue.hpp"
#include "io/slab.hpp"
#include "io/socket_address.hpp"
#include "loop/uring.hpp"
#include "metrics/counter.hpp"
#include "tls/tls_session.hpp"
#include "windlass/loop.hpp"

namespace windlass::detail {

class Socket;
class IoServer;

// The protocol on top of a Socket. Called on the loop thread. A handler is
// not owned by its Socket: whoever made it frees it, after
// on_transport_closed (and not while one of its callbacks is running).
class SocketHandler {
 public:
  // Bytes arrived; `data` is writable (the loop's receive buffer, with
  // LoopResources::kReadBufferPadding readable bytes past the end) and
  // valid only during the call; whatever the handler needs later it copies.
  virtual void on_data(Socket& s, uint8_t* data, size_t len) = 0;
  // The write queue fell under the level asked for with
  // Socket::notify_drained_below().
  virtual void on_drained(Socket& s) { (void)s; }
  // The TCP connection is gone (EOF, error, or the Socket was aborted);
  // `error` is 0 for EOF or an errno value. The Socket is unusable after.
  virtual void on_transport_closed(Socket& s, int error) = 0;
  // Called every sweep interval, to enforce deadlines (header timeout,
  // keepalive, close handshake) without a timer per connection.
  virtual void on_sweep(Socket& s, Loop::Clock::time_point now) {
    (void)s;
    (void)now;
  }
  // The server is shutting down: close politely.
  virtual void on_shutdown(Socket& s) = 0;

 protected:
  ~SocketHandler() = default;
};

struct IoOptions {
  size_t max_connections = 10000;                  // sockets beyond it are refused (see IoServer)
  size_t max_send_queue = 16u << 20;               // bytes queued per connection before it is a slow consumer
  std::chrono::milliseconds linger_timeout{2000};  // how long a closing socket drains input
  std::chrono::milliseconds sweep_interval{1000};
  // Shared by every IoServer of a process, so max_connections bounds the
  // process, not each loop. Null: this IoServer counts alone.
  std::atomic<size_t>* process_connections = nullptr;
  // io_uring: the loop's receive buffers (the first IoServer of a loop
  // makes them; tests use a tiny ring to run it dry). Zeros: the defaults.
  ReceiveBuffers::Options receive_buffers;
  // io_uring: sockets registered in the ring's file table (see
  // Uring::use_registered_files). The first IoServer of a loop sizes the
  // table; tests turn it off to run the plain path.
  bool registered_files = true;
  // io_uring: a reply of at least this many bytes, written while its
  // socket's input is handled (the cork) with nothing else queued, goes out
  // with one write() at once, as on epoll, instead of waiting in a buffer of
  // its own for the turn's submission and its completion: past a few KiB,
  // copying it once more into memory that has left the cache costs more
  // than the system call (bench/RESULTS.md, "Large replies on io_uring").
  // 0: every reply rides the ring.
  size_t direct_send_min = 8192;
};

// The TCP peer, kept in 18 bytes instead of as text: IPv4 as IPv4-mapped
// IPv6 (::ffff:a.b.c.d), network byte order.
struct PeerAddress {
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;

  // False for a socket that is not IPv4 or IPv6 (kept as "::" port 0,
  // which no TCP peer can be).
  bool known() const noexcept {
    if (port != 0) return true;
    for (uint8_t b : ip) {
      if (b != 0) return true;
    }
    return false;
  }

  // "192.0.2.7" for IPv4 (mapped or not), "2001:db8::1", "unknown".
  std::string to_string() const;
  // The same into `buf` (at least kTextSize bytes); returns its length.
  static constexpr size_t kTextSize = 48;
  size_t format(char* buf) const noexcept;
  static PeerAddress from(const sockaddr_storage& addr) noexcept;
};

class Socket final : public IoHandler {
 public:
  Socket(IoServer& server, int fd, const PeerAddress& peer);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Queues bytes; they leave at the end of this loop turn (or when the
  // socket is writable again). Returns false when closed, or when the queue
  // would pass max_send_queue (the caller decides what a slow consumer gets).
  bool write(const void* data, size_t n);
  bool write2(const void* a, size_t an, const void* b, size_t bn);
  // Queues a payload shared by many sockets, by reference.
  bool write_shared(std::shared_ptr<const std::string> payload);
  bool would_exceed(size_t n) const noexcept;

  // Flush, then half-close and read until EOF or the linger timeout, then
  // close: the peer gets our last bytes (e.g. a close frame or an error
  // response) even if it is still sending, since closing with unread input
  // would make the kernel reset the connection and drop them.
  void close_after_flush();
  // Close now, dropping queued bytes; the handler hears on_transport_closed.
  void abort(int error = 0);

  void set_handler(SocketHandler* handler) noexcept { handler_ = handler; }
  SocketHandler* handler() const noexcept { return handler_; }

  bool closed() const noexcept { return fd_ < 0; }
  bool closing() const noexcept { return close_requested_; }
  size_t buffered_amount() const noexcept;  // queued, plus corked while its handler runs
  // One on_drained() once the queue holds fewer than `below` bytes (at
  // once if it already does, at the end of this turn's flush).
  void notify_drained_below(size_t below) noexcept;
  // Kept equal to the queued bytes (release stores), for readers on other
  // threads; null: none. Values past 4 GiB read as UINT32_MAX.
  void set_buffered_mirror(std::atomic<uint32_t>* mirror) noexcept;

  // TLS details for logs, or null on a plain connection.
  const tls::TlsSession* tls() const noexcept { return extra_ && extra_->tls ? &extra_->tls->session : nullptr; }
  const PeerAddress& peer() const noexcept { return peer_; }
  IoServer& server() const noexcept { return *server_; }
  Loop& loop() const noexcept;
  LoopResources& resources() const noexcept;
  int fd() const noexcept { return fd_; }

  void on_io(uint32_t events) override;

 private:
  friend class IoServer;
  // io_uring completions (Uring's handlers for UringOp::recv and ::send).
  static void on_recv_done(void* socket, int32_t res, uint32_t flags);
  static void on_send_done(void* socket, int32_t res, uint32_t flags);
  void arm_recv();
  void send_queued();
  void maybe_retire();
  void drop_extra();
  // What both backends do with bytes read: discard (lingering), decrypt,
  // or hand them to the handler with the cork in place.
  void on_received(uint8_t* data, size_t len);
  void mark_dirty();
  bool corked() const noexcept;
  // True when `n` more bytes go to the cork; moves the cork to the queue
  // (spill_cork) when they would pass its limit.
  bool cork_takes(size_t n);
  void spill_cork();
  void uncork();
  void flush();
  OutQueue& queue();  // the plaintext queue, made when first needed
  void queued(size_t n) noexcept;
  void unqueued(size_t n) noexcept;
  size_t queued_amount() const noexcept { return queued_; }
  void release_extra();
  bool on_tls_data(uint8_t* data, size_t len);
  void encrypt_queued();
  OutQueue* wire() noexcept;
  void finish_close(int error);
  void update_interest();
  Uring* uring() const noexcept;

  // What only a TLS connection needs.
  struct Tls {
    Tls(const tls::TlsContext& context, std::shared_ptr<const std::string> answer)
        : session(context), plain_answer(std::move(answer)) {}
    tls::TlsSession session;
    OutQueue wire;  // ciphertext waiting for the kernel
    // What to say to a peer that speaks plain HTTP to this TLS port (set
    // by the layer above through ListenerOptions; it outlives the listener).
    std::shared_ptr<const std::string> plain_answer;
    bool close_sent = false;
  };
 public:
  // What a socket needs only while it has bytes waiting, is closing, or
  // speaks TLS: made when first needed (from the server's pool), so an
  // idle plain socket holds one null pointer for all of it.
  struct Extra {
    OutQueue out;  // plaintext waiting (on TLS, to be encrypted at flush)
    std::unique_ptr<Tls> tls;
    uint32_t drain_below = 0;         // on_drained wanted under this many bytes; 0: not wanted
    uint32_t linger_deadline_ms = 0;  // IoServer::clock_ms() of the linger deadline, once closing
    // io_uring: a send of several pieces (a frame header and a shared
    // broadcast, say) goes as a sendmsg whose pieces the kernel reads
    // after the submission, so they live here, not on a stack. Made at
    // the socket's first such send and kept with the Extra; a send of one
    // piece (an echo, a handshake's 101) needs none, which keeps the
    // Extras of a burst of handshakes small.
    static constexpr int kSendPieces = 16;
    struct SendVector {
      iovec iov[kSendPieces];
      msghdr msg;
    };
    std::unique_ptr<SendVector> vector;
  };

 private:
  Extra& extra();

  IoServer* server_;
  SocketHandler* handler_ = nullptr;
  std::unique_ptr<Extra> extra_;
  std::atomic<uint32_t>* mirror_ = nullptr;
  uint32_t queued_ = 0;  // bytes in the queues (max_send_queue is below 4 GiB)
  int fd_;
  bool dirty_ : 1 = false;       // in the server's flush list
  bool want_write_ : 1 = false;  // epoll: EPOLLOUT registered
  bool close_requested_ : 1 = false;
  bool lingering_ : 1 = false;      // write side shut, draining input
  bool recv_armed_ : 1 = false;     // io_uring: a multishot receive is queued or in the kernel
  bool send_inflight_ : 1 = false;  // io_uring: a send is queued or in the kernel
  bool retired_ : 1 = false;        // in the graveyard, freed at the end of the turn
  bool registered_ : 1 = false;     // io_uring: in the ring's file table at index fd_ (IOSQE_FIXED_FILE)
  PeerAddress peer_;
};

struct ListenerOptions : ListenOptions {
  // Sent as is to a peer that speaks plain text to a TLS listener (the HTTP
  // layer's "use https://" answer); empty: nothing.
  std::string plain_text_answer;
};

class IoServer {
 public:
  static_assert(LoopResources::kReadBufferPadding <= ReceiveBuffers::kPadding,
                "io_uring's receive buffers keep the padding promise of SocketHandler::on_data");
  // Makes the handler for a new socket (the HTTP layer's session).
  using HandlerFactory = std::function<SocketHandler*(Socket&)>;

  IoServer(Loop& loop, LoopResources& resources, IoOptions options, HandlerFactory factory);
  ~IoServer();

  // Starts listening; returns the bound port (useful with port 0).
  uint16_t listen(const ListenerOptions& options);
  // Closes the listeners (graceful shutdown: open connections stay).
  void stop_accepting();
  // Asks every handler to close politely (on_shutdown).
  void shutdown_all();
  // Aborts every remaining socket.
  void abort_all();

  // Any thread may read it (a snapshot); only the loop thread changes it.
  size_t connection_count() const noexcept { return count_.load(std::memory_order_relaxed); }
  // Open connections over every IoServer sharing the process counter.
  size_t process_connection_count() const noexcept {
    return options_.process_connections->load(std::memory_order_relaxed);
  }
  const IoOptions& options() const noexcept { return options_; }
  Loop& loop() const noexcept { return loop_; }
  LoopResources& resources() const noexcept { return res_; }
  uint64_t accepted_total() const noexcept { return accepted_total_.get(); }
  // Bytes queued on all of this loop's sockets and not yet written.
  uint64_t queued_bytes() const noexcept { return queued_bytes_.get(); }
  // Milliseconds since this server started, on the loop's turn clock: the
  // 32-bit time that per-connection deadlines are kept in (compare with
  // wrap-safe differences; deadlines are minutes, not weeks, away).
  uint32_t clock_ms() const noexcept;
  // The sizes of what a connection costs here, for tests and RESULTS.md.
  size_t socket_slots() const noexcept { return sockets_.capacity(); }
  // Slots in use: open sockets, and (io_uring) closed ones whose last
  // completions have not come yet. Loop thread.
  size_t sockets_in_use() const noexcept { return sockets_.live() - graveyard_.size(); }
  // io_uring: receives re-armed because a turn used every receive buffer
  // (ENOBUFS). Loop thread.
  uint64_t receive_rearms() const noexcept { return receive_rearms_; }
  // io_uring: replies written at once with a system call of their own
  // (IoOptions::direct_send_min). Loop thread.
  uint64_t direct_sends() const noexcept { return direct_sends_; }
  // Times an accept failed for want of a descriptor (each sheds at most one
  // pending connection). Loop thread.
  uint64_t accepts_refused() const noexcept { return accepts_refused_; }
  std::unique_ptr<Socket::Extra> take_extra();
  void give_extra(std::unique_ptr<Socket::Extra> extra);

 private:
  friend class Socket;
  struct Listener;
  void accept_from(int listen_fd, Listener& listener);
  // A descriptor accepted (by either backend) becomes a Socket, or is shed.
  void adopt(int fd, const sockaddr_storage& addr, Listener& listener);
  void shed_one(int listen_fd);
  static void on_accept_done(void* listener, int32_t res, uint32_t flags);
  void arm_accept(Listener& listener);
  void close_listener(std::unique_ptr<Listener> listener);
  // io_uring, outside a running loop (teardown): until every socket's
  // operations have completed, or this thread cannot wait for them.
  void settle();
  void flush_dirty();
  void sweep();
  void retire(Socket* s);

  Loop& loop_;
  LoopResources& res_;
  Uring* uring_ = nullptr;  // the loop's ring when it runs io_uring
  ReceiveBuffers* buffers_ = nullptr;
  bool files_ = false;  // io_uring: the ring has a file table to register sockets in
  IoOptions options_;
  HandlerFactory factory_;
  Loop::Clock::time_point epoch_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Listener>> closing_listeners_;  // io_uring: until their accept's last completion
  Slab sockets_;  // live sockets (the sweep walks its bitmap)
  std::atomic<size_t> count_{0};
  std::atomic<size_t> own_process_count_{0};  // used when options_.process_connections is null
  Counter accepted_total_;
  Counter queued_bytes_;
  std::vector<std::unique_ptr<Socket::Extra>> extras_;  // a pool: sockets take one while they need it
  std::vector<Socket*> dirty_;      // sockets with bytes queued this turn
  std::vector<Socket*> graveyard_;  // closed this turn, freed before the loop waits
  int reserve_fd_ = -1;             // spent to shed a connection when out of descriptors
  uint64_t receive_rearms_ = 0;
  uint64_t direct_sends_ = 0;
  uint64_t accepts_refused_ = 0;
  Loop::TimerId sweep_timer_ = 0;
};

}  // namespace windlass::detail
