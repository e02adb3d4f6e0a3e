// The load generator's engine: one epoll loop driving a fixed set of
// WebSocket client slots through connect -> upgrade -> frames -> close.
//
// A mode (echo, handshake, idle) is a Workload that reacts to a client
// opening, a message arriving and a client closing, plus a function that
// runs the loop through its phases (see modes.hpp). Everything about
// sockets, the opening handshake, masking, pings and the close handshake
// lives here, so a new mode is only its own logic.
//
// Single-threaded: a ClientLoop and its clients belong to the thread that
// polls it.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latency_histogram.hpp"
#include "options.hpp"
#include "server_frame_reader.hpp"

namespace windlass::load {

uint64_t monotonic_ns() noexcept;

// Where to connect, resolved once.
struct Target {
  sockaddr_storage address{};
  socklen_t address_len = 0;
  std::string host_header;  // "host:port" for the Host header
  std::string path;
};

// Resolves opts.host/port; on failure returns false with a reason.
bool resolve_target(const Options& opts, Target& out, std::string& error);

// A complete data message as the workload sees it: the payload itself is
// not kept (it streams through the shared receive buffer), only what the
// echo check needs.
struct Message {
  Opcode opcode = Opcode::text;
  uint64_t length = 0;
  int first_byte = -1;  // -1 when the message is empty
  int last_byte = -1;
};

struct Stats {
  // Work done in the measured window; the mode resets these after warmup.
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t payload_bytes_received = 0;
  uint64_t handshakes = 0;
  LatencyHistogram latency;

  // Failures over the whole run, never reset.
  uint64_t connect_errors = 0;     // connect() failed or the socket broke before the upgrade
  uint64_t handshake_errors = 0;   // no valid 101 answer
  uint64_t protocol_errors = 0;    // invalid frames from the server
  uint64_t echo_mismatches = 0;    // a reply that was not what was sent
  uint64_t delivery_errors = 0;    // fanout, pusher: a message lost, reordered, corrupted, misdirected
  uint64_t subscribe_errors = 0;   // pusher: no connection_established, a pusher:error
  uint64_t api_errors = 0;         // pusher: an API call failed (status, connection, answer)
  uint64_t unexpected_closes = 0;  // the server closed (or dropped) a connection we did not close
  uint64_t timeouts = 0;           // stuck in connect, upgrade or close too long
  std::map<uint16_t, uint64_t> server_close_codes;  // codes in the server's close frames

  void reset_window() noexcept;
  uint64_t errors() const noexcept;
};

enum class ClientState : uint8_t { idle, connecting, handshaking, open, closing };

class ClientLoop;

// Another descriptor on the loop's epoll set, besides the WebSocket
// clients: the pusher mode's HTTP API connections. Called with the epoll
// events; a watcher whose descriptor was closed in the same poll may still
// be called once and must ignore it.
class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void on_events(uint32_t events) = 0;
};

class Client {
 public:
  size_t index() const noexcept { return index_; }
  ClientState state() const noexcept { return state_; }
  bool is_open() const noexcept { return state_ == ClientState::open; }
  ClientLoop& loop() noexcept { return *loop_; }

  // Queues one frame with a fresh random mask (RFC 6455 §5.3). The payload
  // is copied, so the caller may reuse its buffer at once; the loop sends
  // everything queued after the current callbacks return, in one write.
  void send(Opcode op, const uint8_t* payload, size_t len);

  // Starts the close handshake (§7.1.2): sends a close frame and waits for
  // the server's close frame and then for the server to close TCP (§7.1.1).
  void close(uint16_t code = 1000);

 private:
  friend class ClientLoop;
  struct FrameSink;

  // Output bytes not yet written to the socket. Grows without
  // zero-filling, and is reused, so steady state allocates nothing.
  struct OutputBuffer {
    std::unique_ptr<uint8_t[]> data;
    size_t capacity = 0;
    size_t size = 0;
    size_t sent = 0;
    uint8_t* grow(size_t more);
    void clear() noexcept { size = sent = 0; }
    bool empty() const noexcept { return sent == size; }
  };

  void reset() noexcept;

  ClientLoop* loop_ = nullptr;
  size_t index_ = 0;
  int fd_ = -1;
  ClientState state_ = ClientState::idle;
  bool we_sent_close_ = false;
  bool got_close_ = false;
  bool queued_for_flush_ = false;
  bool waiting_writable_ = false;
  uint64_t state_since_ns_ = 0;
  uint64_t connect_started_ns_ = 0;

  ServerFrameReader reader_;
  uint64_t message_length_ = 0;
  int message_first_ = -1;
  int message_last_ = -1;

  char key_[24] = {};     // Sec-WebSocket-Key sent
  std::string response_;  // the 101 head as it arrives; emptied once open
  OutputBuffer out_;
};

// What a mode does with its clients. Callbacks run on the loop's thread
// and may send, close or (after on_closed) reconnect the client.
class Workload {
 public:
  virtual ~Workload() = default;
  // The upgrade succeeded; `handshake_ns` is connect() to a valid 101.
  virtual void on_open(Client& client, uint64_t handshake_ns) = 0;
  virtual void on_message(Client& client, const Message& message) = 0;
  // The client is idle again: `clean` when the close handshake completed.
  virtual void on_closed(Client& client, bool clean) = 0;

  // A workload that checks payload bytes, not only what Message carries,
  // returns true here (asked once, when the loop is built) and is handed
  // each piece of a data message's payload as it lies in the receive
  // buffer, `offset` bytes into the message, before on_message.
  virtual bool reads_payload() const noexcept { return false; }
  virtual void on_payload(Client& /*client*/, const uint8_t* /*chunk*/, size_t /*len*/, uint64_t /*offset*/) {
  }
};

class ClientLoop {
 public:
  ClientLoop(const Options& opts, const Target& target, size_t slots, Workload& workload);
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  // Queues a connect for an idle client; at most opts.max_connecting are
  // in connect or upgrade at once, so a burst of thousands does not
  // overflow the server's listen backlog (dropped SYNs cost a 1 s retry).
  void connect(Client& client);
  void connect_all();

  // Waits up to `timeout_ms` for socket events and handles them, then
  // starts queued connects, expires stuck clients and sends queued frames.
  void poll(int timeout_ms);

  // Polls until `deadline_ns` passes or the run is aborted.
  void run_until(uint64_t deadline_ns);

  // Starts the close handshake on every open client, then polls until all
  // are idle or `timeout_ms` passes; the rest are dropped and counted as
  // timeouts.
  void close_all(int timeout_ms);

  size_t count(ClientState state) const noexcept;
  size_t pending_connects() const noexcept { return connect_queue_.size(); }
  Client& client(size_t i) noexcept { return *clients_[i]; }
  size_t size() const noexcept { return clients_.size(); }
  Stats& stats() noexcept { return stats_; }
  uint64_t now_ns() const noexcept { return now_ns_; }

  // Adds `fd` to the epoll set for `events` (EPOLLIN, EPOLLOUT), or changes
  // what it waits for; closing the descriptor removes it. False when
  // epoll_ctl fails (errno says why).
  bool watch(int fd, uint32_t events, Watcher& watcher);
  bool rewatch(int fd, uint32_t events, Watcher& watcher);

  // Stops the run: a mode's loop checks aborted() and the reason is
  // reported. The first reason wins.
  void abort(std::string reason);
  bool aborted() const noexcept { return !abort_reason_.empty(); }
  const std::string& abort_reason() const noexcept { return abort_reason_; }

 private:
  friend class Client;

  void start_connect(Client& c);
  void on_connected(Client& c);
  void on_readable(Client& c);
  void on_handshake_bytes(Client& c, const uint8_t* data, size_t len);
  void on_frame_bytes(Client& c, const uint8_t* data, size_t len);
  // The server closed TCP or the read failed (`how` says which).
  void on_eof(Client& c, const std::string& how);
  // Counts a failed client against `counter`, says why on stderr the first
  // time that counter goes up (a failing run shows its cause without a line
  // per connection), and drops the client.
  void fail(Client& c, uint64_t& counter, const std::string& why);
  void queue_flush(Client& c);
  void flush(Client& c);
  void set_writable_interest(Client& c, bool want);
  // Closes the socket and makes the client idle; `clean` is passed to the
  // workload.
  void drop(Client& c, bool clean);
  void expire_stuck_clients();
  uint32_t random_u32() noexcept;

  const Options& opts_;
  const Target& target_;
  Workload& workload_;
  const bool reads_payload_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<Client>> clients_;
  std::deque<Client*> connect_queue_;
  size_t connecting_ = 0;  // clients in connecting or handshaking
  std::vector<Client*> flush_queue_;
  // One receive buffer for all clients, as uWebSockets does per loop: a
  // read's bytes are consumed before the next read, so nothing per
  // connection is needed beyond partial frame headers.
  std::unique_ptr<uint8_t[]> receive_buffer_;
  uint64_t rng_state_;
  uint64_t now_ns_ = 0;
  uint64_t last_expiry_check_ns_ = 0;
  Stats stats_;
  std::string abort_reason_;
};

}  // namespace windlass::load
