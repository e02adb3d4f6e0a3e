#include "ws/ws_connection.hpp"

#include <algorithm>
#include <cstring>

#include "log.hpp"
#include "proto/close_code.hpp"
#include "proto/utf8_validator.hpp"
#include "ws/local_broker.hpp"

namespace windlass::detail {

// What an open WebSocket costs, stated so that growth is a decision: with
// its slot header and its Socket, this is the idle-connection figure in
// bench/RESULTS.md. Checked where the layout is known (libstdc++ on x86-64).
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(WsConnection) <= 128, "WsConnection grew: update bench/RESULTS.md's memory table");
static_assert(sizeof(proto::FrameDecoder) <= 64, "FrameDecoder grew: update bench/RESULTS.md's memory table");
#endif

using proto::Opcode;

namespace {
// Shared frames up to this size are copied into the recipient's buffer.
constexpr size_t kCopySharedFrameLimit = 1024;

std::string peer_text(const Socket* s) {
  return s != nullptr ? s->peer().to_string() : std::string("-");
}
}  // namespace

WsConnection::WsConnection(Socket& socket, uint64_t id)
    : socket_(&socket), opened_at_(socket.loop().now()), decoder_(endpoint().decoder_options()) {
  header().id.store(id, std::memory_order_release);
  header().open.store(0, std::memory_order_release);
  header().buffered.store(0, std::memory_order_release);
}

WsConnection::~WsConnection() = default;

WsConnection::Cold& WsConnection::cold() {
  if (!cold_) cold_ = std::make_unique<Cold>();
  return *cold_;
}

void WsConnection::set_state(State s) noexcept {
  state_ = s;
  header().open.store(s == State::open ? 1 : 0, std::memory_order_release);
}

std::string_view WsConnection::subprotocol() const noexcept {
  if (subprotocol_ == kNoSubprotocol) return {};
  if (subprotocol_ == kOwnSubprotocol) return cold_ ? std::string_view(cold_->subprotocol) : std::string_view();
  return endpoint().route().subprotocols[subprotocol_];
}

void WsConnection::open(uint8_t subprotocol, std::string_view own, const proto::DeflateParams* deflate,
                        std::function<void(Connection&)>* prepare, std::span<uint8_t> rest) {
  subprotocol_ = subprotocol;
  if (subprotocol == kOwnSubprotocol) cold().subprotocol.assign(own);
  const WsRoute& route = endpoint().route();
  if (deflate != nullptr) {
    decoder_.set_allow_rsv1(true);
    auto d = std::make_unique<Deflate>(Deflate{
        *deflate, proto::Inflater(proto::inflater_config(*deflate, route.options.max_message_size)), nullptr,
        nullptr, route.deflate.min_compress_size});
    auto config = proto::deflater_config(*deflate, route.deflate);
    if (config.no_context_takeover) {
      d->shared = &server().shared_deflater(config);
    } else {
      d->own = std::make_unique<proto::Deflater>(config);
    }
    cold().deflate = std::move(d);
  }
  if (RateLimiter* l = limiter()) new (l) RateLimiter(route.rate, socket_->loop().now());  // trivially destructible
  last_received_ms_ = clock_ms();
  opened_at_ = socket_->loop().now();
  socket_->set_buffered_mirror(&header().buffered);
  socket_->set_handler(this);
  set_state(State::open);
  server().count_opened();
  Connection self = handle();
  if (prepare != nullptr && *prepare) guarded([&] { (*prepare)(self); });
  if (state_ == State::open) {
    opened_ = true;
    guarded([&] { component().on_open(self); });
  }
  if (!rest.empty() && socket_ != nullptr && !socket_->closed()) on_data(*socket_, rest.data(), rest.size());
}

void WsConnection::upgrade_failed(int status) {
  Connection self = handle();
  set_state(State::closed);
  try {
    component().on_upgrade_failed(self, status);
  } catch (...) {
    log_error("ws: connection {}: on_upgrade_failed threw: {}", id(), describe_exception(std::current_exception()));
  }
  socket_ = nullptr;
  finish();
}

template <class F>
void WsConnection::guarded(F&& f) {
  try {
    f();
  } catch (...) {
    auto error = std::current_exception();
    log_error("ws: connection {} ({}): application error: {}", id(), peer_text(socket_), describe_exception(error));
    Connection self = handle();
    try {
      component().on_error(self, error);
    } catch (...) {
      log_error("ws: connection {}: on_error threw: {}", id(), describe_exception(std::current_exception()));
    }
    if (state_ == State::open) close(1011, "internal server error", CloseCause::server_closed);
  }
}

// ------------------------------------------------------------ sending

const std::string* WsConnection::compress(const void* data, size_t len) {
  if (!cold_ || !cold_->deflate || len < cold_->deflate->min_size) return nullptr;
  Deflate& dz = *cold_->deflate;
  std::string& out = server().resources().deflate_out;
  out.clear();
  proto::Deflater& d = dz.own ? *dz.own : *dz.shared;
  if (d.compress(static_cast<const uint8_t*>(data), len, out) != proto::DeflateError::none) return nullptr;
  return &out;
}

SendStatus WsConnection::after_send(size_t payload_len) {
  bytes_out_ += payload_len;
  server().count_message_out(payload_len);
  // Backpressure: the caller hears it at once, and on_drain when the queue
  // falls back under the watermark (the socket's flush checks).
  if (socket_->buffered_amount() > options().send_watermark) {
    if (!wants_drain_) {
      wants_drain_ = true;
      socket_->notify_drained_below(options().send_watermark);
    }
    return SendStatus::backpressure;
  }
  return SendStatus::queued;
}

SendStatus WsConnection::send(Opcode op, const void* data, size_t len) {
  if (state_ != State::open) return SendStatus::closed;
  // RFC 7692 §6: a compressed message has RSV1 set on its (first) frame.
  const std::string* z = compress(data, len);
  SendStatus st = z != nullptr ? send_frame(op, z->data(), z->size(), true) : send_frame(op, data, len);
  if (st != SendStatus::queued) return st;
  return after_send(len);
}

SendStatus WsConnection::send_frame(Opcode op, const void* data, size_t len, bool rsv1) {
  // What was published before this frame reaches its subscribers first (the
  // loop's topics batch a turn's deliveries; pubsub.hpp). It may close this
  // connection.
  server().topics().flush();
  if (socket_ == nullptr) return SendStatus::closed;
  uint8_t header_bytes[proto::kMaxFrameHeader];
  size_t header_len = proto::encode_frame_header(header_bytes, op, len, true, rsv1);
  if (socket_->write2(header_bytes, header_len, data, len)) return SendStatus::queued;
  // Refused on an open socket: only the send-queue limit does that.
  if (!socket_->closed() && !socket_->closing()) {
    slow_consumer(header_len + len);
    return SendStatus::dropped;
  }
  return SendStatus::closed;
}

void WsConnection::send_shared(const SharedFrame& message, CompressedVariant& compressed) {
  if (state_ != State::open || socket_ == nullptr) return;
  std::string_view payload = message->payload();
  if (cold_ && cold_->deflate && payload.size() >= cold_->deflate->min_size) {
    Deflate& dz = *cold_->deflate;
    Opcode op = message->binary ? Opcode::binary : Opcode::text;
    if (dz.shared != nullptr) {
      // Every connection on this loop with these settings gets the same
      // bytes: compress once per delivery, share the frame.
      if (compressed.deflater != dz.shared) {
        std::string& z = server().resources().deflate_out;
        z.clear();
        if (dz.shared->compress(payload, z) == proto::DeflateError::none) {
          uint8_t header_bytes[proto::kMaxFrameHeader];
          size_t hn = proto::encode_frame_header(header_bytes, op, z.size(), true, true);
          auto frame = std::make_shared<std::string>(reinterpret_cast<const char*>(header_bytes), hn);
          frame->append(z);
          compressed.deflater = dz.shared;
          compressed.frame = std::move(frame);
        }
      }
      if (compressed.deflater == dz.shared) {
        queue_frame_bytes(compressed.frame);
        return;
      }
    } else {
      send(op, payload.data(), payload.size());  // this connection's own window
      return;
    }
  }
  // The aliasing constructor shares ownership of the message while pointing at its frame.
  queue_frame_bytes(std::shared_ptr<const std::string>(message, &message->frame));
}

SendStatus WsConnection::queue_frame_bytes(const std::shared_ptr<const std::string>& frame) {
  size_t size = frame->size();
  if (socket_->would_exceed(size)) {
    slow_consumer(size);
    return SendStatus::dropped;
  }
  // A small frame is copied: cheaper than a reference count, and it joins
  // the connection's other pending bytes in one buffer.
  const bool ok = size <= kCopySharedFrameLimit ? socket_->write(frame->data(), size) : socket_->write_shared(frame);
  if (!ok) return SendStatus::closed;
  return after_send(size);
}

void WsConnection::on_drained(Socket&) {
  if (!wants_drain_ || state_ != State::open) return;
  wants_drain_ = false;
  Connection self = handle();
  guarded([&] { component().on_drain(self); });
}

void WsConnection::send_close_frame(uint16_t code, std::string_view reason) {
  uint8_t payload[proto::kMaxControlPayload];
  size_t n = code == static_cast<uint16_t>(proto::CloseCode::no_status)
                 ? 0  // §7.4.1: 1005 is never sent; an empty close frame says the same
                 : proto::build_close_payload(code, reason, payload);
  send_frame(Opcode::close, payload, n);
}

// A client that stops reading while we keep sending would make its queue
// grow without bound. Past max_send_queue it is dropped: no close frame
// (it would wait behind the backlog the client is not reading), and the
// application hears code 1008 with CloseCause::slow_consumer.
void WsConnection::slow_consumer(size_t wanted) {
  if (socket_ == nullptr) return;
  Socket& s = *socket_;
  log_warn("ws: connection {} ({}): slow consumer: {} bytes queued, {} more would pass the limit; closing", id(),
           s.peer().to_string(), s.buffered_amount(), wanted);
  report_close(s, static_cast<uint16_t>(proto::CloseCode::policy_violation), "send queue limit exceeded",
               CloseCause::slow_consumer, false);
  s.abort(0);
}

void WsConnection::close(uint16_t code, std::string_view reason, CloseCause cause) {
  if (state_ != State::open || socket_ == nullptr) return;
  if (!proto::is_valid_wire_close_code(code)) code = static_cast<uint16_t>(proto::CloseCode::normal);
  send_close_frame(code, reason);
  if (state_ != State::open) return;  // the close frame itself overflowed the queue
  set_state(State::closing);
  close_cause_ = cause;
  close_code_ = code;
  cold().close_reason.assign(reason.substr(0, 123));
  deadline_ms_ = clock_ms() + static_cast<uint32_t>(options().close_timeout.count());
}

// ------------------------------------------------------------ receiving

void WsConnection::on_data(Socket& s, uint8_t* data, size_t len) {
  last_received_ms_ = s.server().clock_ms();
  ping_outstanding_ = false;  // any byte from the peer proves it alive
  if (state_ == State::closed) return;
  decoder_.feed(data, len, *this);
}

bool WsConnection::on_data(Opcode op, bool compressed, uint8_t* chunk, size_t len, bool first, bool last) {
  // After our close frame, data is read but not delivered (§7.1.2: we wait
  // only for the client's close).
  if (state_ != State::open) return state_ == State::closing;
  // Bytes are charged as they arrive (compressed bytes under deflate), the
  // message once, on its first chunk.
  if (RateLimiter* l = limiter(); l != nullptr &&
                                  !l->allow(endpoint().route().rate, socket_->loop().now(), len, first ? 1 : 0)) {
    return rate_limited();
  }
  if (compressed) {
    // RFC 7692 §7.2.2: inflate the message's payload, then check its text.
    // The inflater stops at max_message_size, so a decompression bomb costs
    // at most that much memory before it is refused with 1009.
    Cold& c = cold();
    BufferPool& pool = server().resources().pool;
    if (first) c.message = pool.take();
    auto err = c.deflate->inflater.feed(chunk, len, c.message);
    if (err == proto::InflateError::none && last) err = c.deflate->inflater.finish(c.message);
    if (err != proto::InflateError::none) {
      fail(static_cast<uint16_t>(proto::close_code_for(err)), proto::describe(err));
      return false;
    }
    if (last) {
      if (op == Opcode::text && !proto::is_valid_utf8(c.message)) {
        fail(static_cast<uint16_t>(proto::CloseCode::invalid_payload), "invalid UTF-8 in a compressed text message");
        return false;
      }
      std::string message = std::move(c.message);
      c.message = std::string();
      deliver(op, reinterpret_cast<const uint8_t*>(message.data()), message.size());
      pool.give(std::move(message));
    }
    return state_ != State::closed;
  }
  if (first && last) {
    deliver(op, chunk, len);  // the whole message is in the receive buffer: no copy
  } else {
    // A message arriving in pieces is assembled in a buffer borrowed from
    // the loop's pool and returned once delivered.
    Cold& c = cold();
    BufferPool& pool = server().resources().pool;
    if (first) c.message = pool.take();
    c.message.append(reinterpret_cast<const char*>(chunk), len);
    if (last) {
      std::string message = std::move(c.message);
      c.message = std::string();
      // Readable padding past the end, as the receive buffer has (simdjson).
      message.reserve(message.size() + LoopResources::kReadBufferPadding);
      deliver(op, reinterpret_cast<const uint8_t*>(message.data()), message.size());
      pool.give(std::move(message));
    }
  }
  return state_ != State::closed;
}

void WsConnection::deliver(Opcode op, const uint8_t* data, size_t len) {
  Message msg{op == Opcode::text ? MessageKind::text : MessageKind::binary,
              std::string_view(reinterpret_cast<const char*>(data), len)};
  server().count_message_in(len);
  bytes_in_ += len;
  Connection self = handle();
  guarded([&] { component().on_message(self, msg); });
}

bool WsConnection::rate_limited() {
  log_info("ws: connection {} ({}): rate limit exceeded; closing with 1008", id(), peer_text(socket_));
  close(static_cast<uint16_t>(proto::CloseCode::policy_violation), "rate limit exceeded", CloseCause::rate_limited);
  return state_ != State::closed;
}

bool WsConnection::on_ping(const uint8_t* payload, size_t len) {
  // Each ping costs us a pong: it counts against the rate limit too.
  if (state_ == State::open) {
    if (RateLimiter* l = limiter(); l != nullptr && !l->allow(endpoint().route().rate, socket_->loop().now(), len, 1)) {
      return rate_limited();
    }
  }
  // §5.5.2: answer with a pong carrying the same payload.
  if (state_ == State::open) send_frame(Opcode::pong, payload, len);
  return state_ != State::closed;
}

bool WsConnection::on_pong(const uint8_t*, size_t) {
  ping_outstanding_ = false;
  return true;
}

bool WsConnection::on_close(uint16_t code, const char* reason, size_t reason_len) {
  if (socket_ == nullptr) return false;
  Socket& s = *socket_;
  if (state_ == State::open) {
    // The client started the close handshake: echo its code (§5.5.1), then
    // close the TCP connection first, as a server should (§7.1.1).
    send_close_frame(code, {});
    report_close(s, code, std::string(reason, reason_len), CloseCause::peer_closed, true);
  } else if (state_ == State::closing) {
    report_close(s, close_code_, cold().close_reason, close_cause_, true);
  }
  s.close_after_flush();
  return false;
}

void WsConnection::on_error(proto::FrameError e) {
  fail(static_cast<uint16_t>(proto::close_code_for(e)), proto::describe(e));
}

// Fails the connection for something the client sent (RFC 6455 §7.1.7).
void WsConnection::fail(uint16_t code, const char* reason) {
  if (state_ == State::closed || socket_ == nullptr) return;
  Socket& s = *socket_;
  log_info("ws: connection {} ({}): closing with {}: {}", id(), s.peer().to_string(), code, reason);
  if (state_ == State::open) send_close_frame(code, reason);
  report_close(s, code, reason, CloseCause::protocol_error, false);
  s.close_after_flush();
}

// ------------------------------------------------------------ lifecycle

void WsConnection::report_close(const Socket& s, uint16_t code, std::string reason, CloseCause cause, bool clean) {
  if (state_ == State::closed) return;
  set_state(State::closed);
  server().count_close(cause, code);
  if (const auto* hook = server().access_hook(); hook != nullptr && *hook) {
    char peer[PeerAddress::kTextSize];
    const size_t peer_len = s.peer().format(peer);
    AccessEvent e;
    e.kind = AccessEvent::Kind::close;
    e.connection_id = id();
    e.remote = std::string_view(peer, peer_len);
    e.remote_port = s.peer().port;
    e.path = endpoint().route().pattern;  // the route: the request itself is not kept
    e.reason = reason;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(Loop::Clock::now() - opened_at_);
    e.close_code = code;
    e.cause = cause;
    e.bytes_in = bytes_in_;
    e.bytes_out = bytes_out_;
    (*hook)(e);
  }
  // A closed connection receives no more publications.
  if (topic_count_ != 0) server().local_broker().leave_all(this, server().loop().index());
  if (opened_) {
    CloseInfo info{code, std::move(reason), cause, clean};
    Connection self = handle();
    guarded([&] { component().on_close(self, info); });
  }
}

void WsConnection::on_transport_closed(Socket& s, int error) {
  if (state_ == State::closing) {
    report_close(s, close_code_, cold().close_reason, close_cause_, false);
  } else if (state_ == State::open) {
    std::string why = error == 0 ? "connection closed without a close frame"
                                 : std::string("connection error: ") + std::strerror(error);
    report_close(s, static_cast<uint16_t>(proto::CloseCode::abnormal), std::move(why), CloseCause::transport_closed,
                 false);
  }
  socket_ = nullptr;
  finish();
}

void WsConnection::finish() {
  if (finished_) return;
  finished_ = true;
  if (topic_count_ != 0) server().local_broker().leave_all(this, server().loop().index());
  endpoint().retire(this);
}

void WsConnection::on_sweep(Socket& s, Loop::Clock::time_point) {
  const uint32_t now = s.server().clock_ms();
  const WsOptions& o = options();
  if (state_ == State::open && o.ping_interval.count() > 0) {
    if (ping_outstanding_) {
      if (now - deadline_ms_ >= static_cast<uint32_t>(o.pong_timeout.count())) {
        log_info("ws: connection {} ({}): keepalive timeout: no answer to a ping in {} ms", id(),
                 s.peer().to_string(), o.pong_timeout.count());
        report_close(s, static_cast<uint16_t>(proto::CloseCode::abnormal), "keepalive timeout",
                     CloseCause::keepalive_timeout, false);
        s.abort(ETIMEDOUT);
      }
    } else if (now - last_received_ms_ >= static_cast<uint32_t>(o.ping_interval.count())) {
      send_frame(Opcode::ping, nullptr, 0);
      ping_outstanding_ = true;
      deadline_ms_ = now;
    }
  } else if (state_ == State::closing && static_cast<int32_t>(now - deadline_ms_) >= 0) {
    log_info("ws: connection {} ({}): no close frame from the client within {} ms", id(), s.peer().to_string(),
             o.close_timeout.count());
    report_close(s, close_code_, cold().close_reason, close_cause_, false);
    s.abort(ETIMEDOUT);
  }
}

void WsConnection::on_shutdown(Socket&) {
  const WsOptions& o = options();
  close(o.shutdown_close_code, o.shutdown_close_reason != nullptr ? o.shutdown_close_reason : "", CloseCause::shutdown);
}

}  // namespace windlass::detail
