// IoServer: listening sockets, accept, and the TCP connection (Socket)
// with its write queue, backpressure and lingering close. The layer of
// Ratchet's IoServer; it knows nothing of HTTP or WebSocket: a Socket hands
// the bytes it reads to its SocketHandler (HttpSession, then WsConnection).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/out_queue.hpp"
#include "io/socket_address.hpp"
#include "metrics/counter.hpp"
#include "tls/tls_session.hpp"
#include "windlass/loop.hpp"

namespace windlass::detail {

class Socket;
class IoServer;

// The protocol on top of a Socket. Called on the loop thread.
class SocketHandler {
 public:
  virtual ~SocketHandler() = default;
  // Bytes arrived; `data` is writable (the loop's receive buffer) and valid
  // only during the call; whatever the handler needs later it copies.
  virtual void on_data(Socket& s, uint8_t* data, size_t len) = 0;
  // The write queue went empty after having data.
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
};

struct IoOptions {
  size_t max_connections = 10000;                  // sockets beyond it are refused (see IoServer)
  size_t max_send_queue = 16u << 20;               // bytes queued per connection before it is a slow consumer
  std::chrono::milliseconds linger_timeout{2000};  // how long a closing socket drains input
  std::chrono::milliseconds sweep_interval{1000};
  // Shared by every IoServer of a process, so max_connections bounds the
  // process, not each loop. Null: this IoServer counts alone.
  std::atomic<size_t>* process_connections = nullptr;
};

class Socket final : public IoHandler {
 public:
  Socket(IoServer& server, int fd, std::string remote_address, uint16_t remote_port);
  ~Socket();

  // Queues bytes; they leave at the end of this loop turn (or when the
  // socket is writable again). Returns false when closed, or when the queue
  // would pass max_send_queue (the caller decides what a slow consumer gets).
  bool write(const void* data, size_t n);
  bool write2(const void* a, size_t an, const void* b, size_t bn);
  bool write_shared(const void* header, size_t header_len, std::shared_ptr<const std::string> payload);
  bool would_exceed(size_t n) const noexcept;

  // Flush, then half-close and read until EOF or the linger timeout, then
  // close: the peer gets our last bytes (e.g. a close frame or an error
  // response) even if it is still sending, since closing with unread input
  // would make the kernel reset the connection and drop them.
  void close_after_flush();
  // Close now, dropping queued bytes; the handler hears on_transport_closed.
  void abort(int error = 0);

  void set_handler(std::shared_ptr<SocketHandler> handler);
  SocketHandler* handler() const noexcept { return handler_.get(); }

  bool closed() const noexcept { return fd_ < 0; }
  bool closing() const noexcept { return close_requested_; }
  size_t buffered_amount() const noexcept;  // queued, plus corked while its handler runs
  // TLS details for logs, or null on a plain connection.
  const tls::TlsSession* tls() const noexcept { return tls_ ? &tls_->session : nullptr; }
  const std::string& remote_address() const noexcept { return remote_address_; }
  uint16_t remote_port() const noexcept { return remote_port_; }
  IoServer& server() const noexcept { return server_; }
  Loop& loop() const noexcept;
  int fd() const noexcept { return fd_; }

  void on_io(uint32_t events) override;

 private:
  friend class IoServer;
  void mark_dirty();
  bool corked() const noexcept;
  // True when `n` more bytes go to the cork; moves the cork to the queue
  // (spill_cork) when they would pass its limit.
  bool cork_takes(size_t n);
  void spill_cork();
  void uncork();
  void flush();
  void queued(size_t n) noexcept;
  size_t queued_amount() const noexcept;  // in the queues (what queued_bytes_ counts)
  bool on_tls_data(uint8_t* data, size_t len);
  void encrypt_queued();
  OutQueue& wire() noexcept { return tls_ ? tls_->wire : out_; }
  void finish_close(int error);
  void update_interest();

  IoServer& server_;
  int fd_;
  OutQueue out_;  // plaintext (on a TLS connection, waiting to be encrypted at flush)
  // What only a TLS connection needs, kept out of line so a plain one
  // does not carry it.
  struct Tls {
    explicit Tls(const tls::TlsContext& context) : session(context) {}
    tls::TlsSession session;
    OutQueue wire;  // ciphertext waiting for the kernel
    bool close_sent = false;
  };
  std::unique_ptr<Tls> tls_;
  std::shared_ptr<SocketHandler> handler_;
  std::shared_ptr<SocketHandler> retired_handler_;  // kept alive until the current dispatch returns
  std::string remote_address_;
  uint16_t remote_port_;
  bool dirty_ = false;       // in the server's flush list
  bool want_write_ = false;  // EPOLLOUT registered
  bool close_requested_ = false;
  bool lingering_ = false;  // write side shut, draining input
  Loop::Clock::time_point linger_deadline_{};
  // Intrusive list of the server's live sockets.
  Socket* prev_ = nullptr;
  Socket* next_ = nullptr;
};

class IoServer {
 public:
  using HandlerFactory = std::function<std::shared_ptr<SocketHandler>(Socket&)>;

  IoServer(Loop& loop, IoOptions options, HandlerFactory factory);
  ~IoServer();

  // Starts listening; returns the bound port (useful with port 0).
  uint16_t listen(const ListenOptions& options);
  // Closes the listeners (graceful shutdown: open connections stay).
  void stop_accepting();
  // Asks every handler to close politely (on_shutdown).
  void shutdown_all();
  // Aborts every remaining socket.
  void abort_all();

  // Any thread may read it (a snapshot); only the loop thread changes it.
  size_t connection_count() const noexcept { return count_.load(std::memory_order_relaxed); }
  BufferPool& pool() noexcept { return pool_; }
  // Open connections over every IoServer sharing the process counter.
  size_t process_connection_count() const noexcept {
    return options_.process_connections->load(std::memory_order_relaxed);
  }
  const IoOptions& options() const noexcept { return options_; }
  Loop& loop() const noexcept { return loop_; }
  uint64_t accepted_total() const noexcept { return accepted_total_.get(); }
  // Bytes queued on all of this loop's sockets and not yet written.
  uint64_t queued_bytes() const noexcept { return queued_bytes_.get(); }

 private:
  friend class Socket;
  struct Listener;
  void accept_from(int listen_fd, tls::TlsContext* tls);
  void flush_dirty();
  void sweep();
  void unlink(Socket* s);
  void retire(Socket* s);

  Loop& loop_;
  IoOptions options_;
  HandlerFactory factory_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  Socket* head_ = nullptr;  // live sockets
  std::atomic<size_t> count_{0};
  std::atomic<size_t> own_process_count_{0};  // used when options_.process_connections is null
  BufferPool pool_;                           // declared before the sockets' users: outlives them
  std::string tls_plain_;                     // per-loop scratch for decrypted bytes
  std::string cork_;                          // what the socket being read sends (Socket::uncork)
  Socket* corked_ = nullptr;                  // that socket, while its handler runs
  std::string tls_cipher_;                    // per-loop scratch for encrypted bytes
  Counter accepted_total_;
  Counter queued_bytes_;
  std::vector<Socket*> dirty_;      // sockets with bytes queued this turn
  std::vector<Socket*> graveyard_;  // closed this turn, freed before the loop waits
  int reserve_fd_ = -1;             // spent to shed a connection when out of descriptors
  Loop::TimerId sweep_timer_ = 0;
};

}  // namespace windlass::detail
