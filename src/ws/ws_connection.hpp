// WsConnection: one open WebSocket (RFC 6455 after the handshake). It is
// the Socket's handler and the object behind the public Connection handle.
// It feeds received bytes to the frame decoder, assembles fragmented
// messages, answers pings, runs the close handshake and keepalive, and
// turns sends into frames.
#pragma once

#include <any>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/io_server.hpp"
#include "proto/deflate.hpp"
#include "proto/ws_frame_decoder.hpp"
#include "http/access_control.hpp"
#include "ws/pubsub.hpp"
#include "ws/rate_limit.hpp"
#include "windlass/app.hpp"
#include "windlass/component.hpp"
#include "windlass/connection.hpp"

namespace windlass::detail {

class WsServer;
struct WsRoute;

class WsConnection final : public SocketHandler, public std::enable_shared_from_this<WsConnection> {
 public:
  // `deflate`: the negotiated permessage-deflate parameters, or null.
  WsConnection(Socket& socket, MessageComponent& component, const WsRoute& route, Request request,
               std::string subprotocol, WsServer& server, const proto::DeflateParams* deflate);
  ~WsConnection() override;

  // Runs on_open, then decodes bytes that arrived behind the handshake.
  void start(uint8_t* rest, size_t rest_len);

  // Connection's API, loop thread only (Connection posts from elsewhere).
  bool send(proto::Opcode op, const void* data, size_t len);
  // Queues a message encoded once for many recipients (see pubsub.hpp).
  bool send_shared(const SharedFrame& message, CompressedVariant& compressed);
  bool subscribe(std::string_view topic);
  bool unsubscribe(std::string_view topic);
  WsServer& server() noexcept { return server_; }
  // The per-IP connection count this connection holds, released when it ends.
  void hold_slot(ConnectionSlot slot) noexcept { slot_ = std::move(slot); }
  void close(uint16_t code, std::string_view reason, CloseCause cause);

  bool is_open() const noexcept { return state_ == State::open; }
  size_t buffered_amount() const noexcept { return socket_ ? socket_->buffered_amount() : 0; }
  uint64_t id() const noexcept { return id_; }
  const Request& request() const noexcept { return request_; }
  const std::string& subprotocol() const noexcept { return subprotocol_; }
  Loop* loop() const noexcept { return loop_; }
  std::any& data() noexcept { return data_; }

  // SocketHandler
  void on_data(Socket& s, uint8_t* data, size_t len) override;
  void on_transport_closed(Socket& s, int error) override;
  void on_sweep(Socket& s, Loop::Clock::time_point now) override;
  void on_shutdown(Socket& s) override;

  // FrameDecoder sink
  bool on_data(proto::Opcode op, bool compressed, uint8_t* chunk, size_t len, bool first, bool last);
  bool on_ping(const uint8_t* payload, size_t len);
  bool on_pong(const uint8_t* payload, size_t len);
  bool on_close(uint16_t code, const char* reason, size_t reason_len);
  void on_error(proto::FrameError e);

 private:
  enum class State : uint8_t {
    open,
    closing,  // we sent a close frame and wait for the client's
    closed,   // on_close reported; the socket is closing or gone
  };

  bool send_frame(proto::Opcode op, const void* data, size_t len, bool rsv1 = false);
  bool queue_frame_bytes(const std::shared_ptr<const std::string>& frame);
  // Compresses `data` with this connection's compressor into the loop's
  // scratch; null if compression is not in use for it or failed.
  const std::string* compress(const void* data, size_t len);
  void fail(uint16_t code, const char* reason);
  bool rate_limited();
  void send_close_frame(uint16_t code, std::string_view reason);
  void deliver(proto::Opcode op, const uint8_t* data, size_t len);
  void report_close(uint16_t code, std::string reason, CloseCause cause, bool clean);
  void slow_consumer(size_t wanted);
  // Runs a component callback, routing an exception to on_error.
  template <class F>
  void guarded(F&& f);

  Socket* socket_;  // null once the transport is gone
  MessageComponent& component_;
  const WsOptions& options_;
  WsServer& server_;
  Loop* loop_;
  uint64_t id_;
  State state_ = State::open;
  bool ping_outstanding_ = false;
  bool opened_ = false;  // on_open ran: on_close is owed
  CloseCause close_cause_ = CloseCause::transport_closed;
  Loop::Clock::time_point last_received_;
  Loop::Clock::time_point ping_sent_;
  Loop::Clock::time_point close_deadline_;
  Loop::Clock::time_point opened_at_;
  uint64_t bytes_in_ = 0;   // payload bytes of delivered messages
  uint64_t bytes_out_ = 0;  // payload (or shared frame) bytes queued
  std::string close_reason_;
  uint16_t close_code_ = 1006;
  proto::FrameDecoder decoder_;
  // permessage-deflate state, only on connections that negotiated it.
  struct Deflate {
    proto::DeflateParams params;
    proto::Inflater inflater;
    std::unique_ptr<proto::Deflater> own;  // per-connection window
    proto::Deflater* shared = nullptr;     // or the loop's shared compressor
    size_t min_size = 0;
    bool message_compressed = false;       // the message being received
  };
  std::unique_ptr<Deflate> deflate_;
  const RateLimitConfig& rate_;
  RateLimiter limiter_;
  ConnectionSlot slot_;
  std::string message_;  // a message arriving in pieces; empty otherwise
  Request request_;
  std::string subprotocol_;
  std::any data_;
  std::vector<std::string> topics_;  // subscriptions, dropped when the connection closes
  // The handle passed to callbacks. It owns this object while the transport
  // is up (a deliberate cycle, broken when the socket closes), so callbacks
  // need no reference counting per message.
  Connection self_;
};

}  // namespace windlass::detail
