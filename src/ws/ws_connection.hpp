// WsConnection: one WebSocket (RFC 6455 after the handshake), and the
// object behind the public Connection handle. It lives in its endpoint's
// slab, after a ConnectionSlotHeader and before the component's state. It
// feeds received bytes to the frame decoder, assembles fragmented
// messages, answers pings, runs the close handshake and keepalive, and
// turns sends into frames.
//
// An idle connection is this object and its Socket, and nothing else: the
// upgrade request is not kept, deadlines are 32-bit times checked by the
// I/O layer's sweep, topic memberships are in the loop's TopicTable, and
// what only some connections need (compression, a message arriving in
// pieces, a close reason, an unusual subprotocol) is in `cold_`, made
// when first needed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "io/io_server.hpp"
#include "proto/deflate.hpp"
#include "proto/ws_frame_decoder.hpp"
#include "windlass/component.hpp"
#include "windlass/connection.hpp"
#include "ws/pubsub.hpp"
#include "ws/rate_limit.hpp"
#include "ws/ws_server.hpp"

namespace windlass::detail {

class WsConnection final : public SocketHandler {
 public:
  // In the handshake: not open, not yet the socket's handler.
  WsConnection(Socket& socket, uint64_t id);
  ~WsConnection();
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  // The handshake was accepted and its 101 queued, and the socket is ours:
  // runs on_open, then decodes the bytes that followed the request.
  // `subprotocol`: an index into the route's list, kNoSubprotocol, or
  // kOwnSubprotocol with the name in `own`.
  static constexpr uint8_t kNoSubprotocol = 0xff;
  static constexpr uint8_t kOwnSubprotocol = 0xfe;
  void open(uint8_t subprotocol, std::string_view own, const proto::DeflateParams* deflate,
            std::function<void(Connection&)>* prepare, std::span<uint8_t> rest);
  // The handshake ended without opening: on_upgrade_failed, then freed.
  void upgrade_failed(int status);

  // Connection's API, loop thread only (Connection posts from elsewhere).
  SendStatus send(proto::Opcode op, const void* data, size_t len);
  // Queues a message encoded once for many recipients (see pubsub.hpp).
  void send_shared(const SharedFrame& message, CompressedVariant& compressed);
  void close(uint16_t code, std::string_view reason, CloseCause cause);

  bool is_open() const noexcept { return state_ == State::open; }
  bool upgrading() const noexcept { return state_ == State::upgrading; }
  uint64_t id() const noexcept { return header().id.load(std::memory_order_relaxed); }
  // The id in the slot of `c`, which may hold no live connection (a handle
  // kept after its close): read from the header, without a member call on
  // what may be no object.
  static uint64_t id_in_slot(const WsConnection* c) noexcept {
    return reinterpret_cast<const ConnectionSlotHeader*>(reinterpret_cast<const std::byte*>(c) - kSlotHeaderSize)
        ->id.load(std::memory_order_relaxed);
  }
  ConnectionSlotHeader& header() const noexcept {
    return *reinterpret_cast<ConnectionSlotHeader*>(reinterpret_cast<std::byte*>(const_cast<WsConnection*>(this)) -
                                                    kSlotHeaderSize);
  }
  Connection handle() const noexcept {
    return Connection(const_cast<WsConnection*>(this), id(), &endpoint().server().loop());
  }
  Socket* socket() const noexcept { return socket_; }
  // The connection's route on its loop (in the slot's header: readable
  // from any thread).
  WsEndpoint& endpoint() const noexcept { return *header().endpoint; }
  WsServer& server() const noexcept { return endpoint().server(); }
  std::string_view subprotocol() const noexcept;
  // The component's state in this slot (null when it declares none).
  void* state() noexcept {
    return endpoint().state_offset() == 0 ? nullptr : reinterpret_cast<std::byte*>(this) + endpoint().state_offset();
  }
  // Topics this connection is in (their names are in the loop's TopicTable).
  uint16_t& topic_count() noexcept { return topic_count_; }

  // SocketHandler
  void on_data(Socket& s, uint8_t* data, size_t len) override;
  void on_drained(Socket& s) override;
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
    upgrading,  // the handshake is being answered
    open,
    closing,  // we sent a close frame and wait for the client's
    closed,   // on_close reported; the socket is closing or gone
  };
  // permessage-deflate state, only on connections that negotiated it.
  struct Deflate {
    proto::DeflateParams params;
    proto::Inflater inflater;
    std::unique_ptr<proto::Deflater> own;  // per-connection window
    proto::Deflater* shared = nullptr;     // or the loop's shared compressor
    size_t min_size = 0;
  };
  // What only some connections need, made when first needed.
  struct Cold {
    std::unique_ptr<Deflate> deflate;
    std::string message;  // a message arriving in pieces (or compressed); empty otherwise
    std::string close_reason;
    std::string subprotocol;  // kOwnSubprotocol's name
    bool message_compressed = false;
  };
  Cold& cold();
  RateLimiter* limiter() noexcept {
    return endpoint().rate_offset() == 0
               ? nullptr
               : reinterpret_cast<RateLimiter*>(reinterpret_cast<std::byte*>(this) + endpoint().rate_offset());
  }

  SendStatus send_frame(proto::Opcode op, const void* data, size_t len, bool rsv1 = false);
  SendStatus queue_frame_bytes(const std::shared_ptr<const std::string>& frame);
  SendStatus after_send(size_t payload_len);
  // Compresses `data` with this connection's compressor into the loop's
  // scratch; null if compression is not in use for it or failed.
  const std::string* compress(const void* data, size_t len);
  void fail(uint16_t code, const char* reason);
  bool rate_limited();
  void send_close_frame(uint16_t code, std::string_view reason);
  void deliver(proto::Opcode op, const uint8_t* data, size_t len);
  void report_close(const Socket& s, uint16_t code, std::string reason, CloseCause cause, bool clean);
  void slow_consumer(size_t wanted);
  void set_state(State s) noexcept;
  void finish();  // after the last callback: leave the loop's tables, free at the end of the turn
  // Runs a component callback, routing an exception to on_error.
  template <class F>
  void guarded(F&& f);
  MessageComponent& component() const noexcept { return endpoint().component(); }
  const WsOptions& options() const noexcept { return endpoint().route().options; }
  uint32_t clock_ms() const noexcept { return socket_ != nullptr ? socket_->server().clock_ms() : 0; }

  Socket* socket_;  // null once the transport is gone
  std::unique_ptr<Cold> cold_;
  uint64_t bytes_in_ = 0;   // payload bytes of delivered messages
  uint64_t bytes_out_ = 0;  // payload (or shared frame) bytes queued
  Loop::Clock::time_point opened_at_;
  proto::FrameDecoder decoder_;
  uint32_t last_received_ms_ = 0;  // IoServer::clock_ms() of the last byte received
  uint32_t deadline_ms_ = 0;       // when the ping went out (open), or the close deadline (closing)
  uint16_t close_code_ = 1006;
  uint16_t topic_count_ = 0;
  State state_ = State::upgrading;
  CloseCause close_cause_ = CloseCause::transport_closed;
  uint8_t subprotocol_ = kNoSubprotocol;
  bool ping_outstanding_ : 1 = false;
  bool opened_ : 1 = false;  // on_open ran: on_close is owed
  bool wants_drain_ : 1 = false;  // a send answered backpressure: on_drain is owed
  bool finished_ : 1 = false;
};

}  // namespace windlass::detail
