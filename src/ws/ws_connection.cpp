#include "ws/ws_connection.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "log.hpp"
#include "proto/close_code.hpp"
#include "proto/utf8_validator.hpp"
#include "ws/ws_server.hpp"

namespace windlass::detail {

// What an open WebSocket costs, stated so that growth is a decision: the
// objects below, plus the upgrade request's headers on the heap, make the
// idle-connection figure in bench/RESULTS.md. Checked where the layout is
// known (libstdc++ on x86-64).
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(WsConnection) <= 704, "WsConnection grew: update bench/RESULTS.md's memory table");
static_assert(sizeof(proto::FrameDecoder) <= 88, "FrameDecoder grew: update bench/RESULTS.md's memory table");
#endif

using proto::Opcode;

namespace {
std::atomic<uint64_t> next_connection_id{1};

// Shared frames up to this size are copied into the recipient's buffer.
constexpr size_t kCopySharedFrameLimit = 1024;
}  // namespace

WsConnection::WsConnection(Socket& socket, MessageComponent& component, const WsRoute& route, Request request,
                           std::string subprotocol, WsServer& server, const proto::DeflateParams* deflate)
    : socket_(&socket),
      component_(component),
      options_(route.options),
      server_(server),
      loop_(&socket.loop()),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      last_received_(socket.loop().now()),
      opened_at_(socket.loop().now()),
      decoder_(proto::DecoderOptions{.max_message_size = route.options.max_message_size,
                                     .allow_rsv1 = deflate != nullptr}),
      rate_(route.rate),
      limiter_(route.rate, socket.loop().now()),
      request_(std::move(request)),
      subprotocol_(std::move(subprotocol)) {
  if (deflate != nullptr) {
    deflate_ = std::make_unique<Deflate>(
        Deflate{*deflate, proto::Inflater(proto::inflater_config(*deflate, route.options.max_message_size)),
                nullptr, nullptr, route.deflate.min_compress_size, false});
    auto config = proto::deflater_config(*deflate, route.deflate);
    if (config.no_context_takeover) {
      deflate_->shared = &server.shared_deflater(config);
    } else {
      deflate_->own = std::make_unique<proto::Deflater>(config);
    }
  }
}

WsConnection::~WsConnection() = default;

void WsConnection::start(uint8_t* rest, size_t rest_len) {
  self_ = Connection(shared_from_this());
  opened_ = true;
  guarded([&] { component_.on_open(self_); });
  if (rest_len > 0 && socket_ != nullptr && !socket_->closed()) on_data(*socket_, rest, rest_len);
}

template <class F>
void WsConnection::guarded(F&& f) {
  try {
    f();
  } catch (...) {
    auto error = std::current_exception();
    log_error("ws: connection {} ({}): application error: {}", id_, request_.remote_address,
              describe_exception(error));
    try {
      component_.on_error(self_, error);
    } catch (...) {
      log_error("ws: connection {}: on_error threw: {}", id_, describe_exception(std::current_exception()));
    }
    if (state_ == State::open) close(1011, "internal server error", CloseCause::server_closed);
  }
}

// ------------------------------------------------------------ sending

const std::string* WsConnection::compress(const void* data, size_t len) {
  if (!deflate_ || len < deflate_->min_size) return nullptr;
  std::string& out = server_.deflate_scratch();
  out.clear();
  proto::Deflater& d = deflate_->own ? *deflate_->own : *deflate_->shared;
  if (d.compress(static_cast<const uint8_t*>(data), len, out) != proto::DeflateError::none) return nullptr;
  return &out;
}

bool WsConnection::send(Opcode op, const void* data, size_t len) {
  if (state_ != State::open) return false;
  // RFC 7692 §6: a compressed message has RSV1 set on its (first) frame.
  const std::string* z = compress(data, len);
  bool sent = z != nullptr ? send_frame(op, z->data(), z->size(), true) : send_frame(op, data, len);
  if (!sent) return false;
  bytes_out_ += len;
  server_.count_message_out(len);
  return true;
}

bool WsConnection::send_frame(Opcode op, const void* data, size_t len, bool rsv1) {
  if (socket_ == nullptr) return false;
  uint8_t header[proto::kMaxFrameHeader];
  size_t header_len = proto::encode_frame_header(header, op, len, true, rsv1);
  if (socket_->write2(header, header_len, data, len)) return true;
  // Refused on an open socket: only the send-queue limit does that.
  if (!socket_->closed() && !socket_->closing()) slow_consumer(header_len + len);
  return false;
}

bool WsConnection::send_shared(const SharedFrame& message, CompressedVariant& compressed) {
  if (state_ != State::open || socket_ == nullptr) return false;
  std::string_view payload = message->payload();
  if (deflate_ && payload.size() >= deflate_->min_size) {
    Opcode op = message->binary ? Opcode::binary : Opcode::text;
    if (deflate_->shared != nullptr) {
      // Every connection on this loop with these settings gets the same
      // bytes: compress once per delivery, share the frame.
      if (compressed.deflater != deflate_->shared) {
        std::string& z = server_.deflate_scratch();
        z.clear();
        if (deflate_->shared->compress(payload, z) == proto::DeflateError::none) {
          uint8_t header[proto::kMaxFrameHeader];
          size_t hn = proto::encode_frame_header(header, op, z.size(), true, true);
          auto frame = std::make_shared<std::string>(reinterpret_cast<const char*>(header), hn);
          frame->append(z);
          compressed.deflater = deflate_->shared;
          compressed.frame = std::move(frame);
        }
      }
      if (compressed.deflater == deflate_->shared) return queue_frame_bytes(compressed.frame);
    } else {
      return send(op, payload.data(), payload.size());  // this connection's own window
    }
  }
  // The aliasing constructor shares ownership of the message while pointing at its frame.
  return queue_frame_bytes(std::shared_ptr<const std::string>(message, &message->frame));
}

bool WsConnection::queue_frame_bytes(const std::shared_ptr<const std::string>& frame) {
  size_t size = frame->size();
  if (socket_->would_exceed(size)) {
    slow_consumer(size);
    return false;
  }
  bytes_out_ += size;
  server_.count_message_out(size);
  // A small frame is copied: cheaper than a reference count, and it joins
  // the connection's other pending bytes in one buffer.
  if (size <= kCopySharedFrameLimit) return socket_->write(frame->data(), size);
  return socket_->write_shared(nullptr, 0, frame);
}

bool WsConnection::subscribe(std::string_view topic) {
  if (state_ != State::open) return false;
  if (!server_.topics().subscribe(topic, this)) return false;
  topics_.emplace_back(topic);
  return true;
}

bool WsConnection::unsubscribe(std::string_view topic) {
  auto it = std::find(topics_.begin(), topics_.end(), topic);
  if (it == topics_.end()) return false;
  server_.topics().unsubscribe(topic, this);
  topics_.erase(it);
  return true;
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
  log_warn("ws: connection {} ({}): slow consumer: {} bytes queued, {} more would pass the limit; closing",
           id_, request_.remote_address, socket_->buffered_amount(), wanted);
  auto keep = self_;
  report_close(static_cast<uint16_t>(proto::CloseCode::policy_violation), "send queue limit exceeded",
               CloseCause::slow_consumer, false);
  socket_->abort(0);
}

void WsConnection::close(uint16_t code, std::string_view reason, CloseCause cause) {
  if (state_ != State::open || socket_ == nullptr) return;
  if (!proto::is_valid_wire_close_code(code)) code = static_cast<uint16_t>(proto::CloseCode::normal);
  send_close_frame(code, reason);
  if (state_ != State::open) return;  // the close frame itself overflowed the queue
  state_ = State::closing;
  close_cause_ = cause;
  close_code_ = code;
  close_reason_.assign(reason.substr(0, 123));
  close_deadline_ = loop_->now() + options_.close_timeout;
}

// ------------------------------------------------------------ receiving

void WsConnection::on_data(Socket&, uint8_t* data, size_t len) {
  last_received_ = loop_->now();
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
  if (rate_.enabled() && !limiter_.allow(rate_, loop_->now(), len, first ? 1 : 0)) return rate_limited();
  if (compressed) {
    // RFC 7692 §7.2.2: inflate the message's payload, then check its text.
    // The inflater stops at max_message_size, so a decompression bomb costs
    // at most that much memory before it is refused with 1009.
    if (first && socket_ != nullptr) message_ = socket_->server().pool().take();
    auto err = deflate_->inflater.feed(chunk, len, message_);
    if (err == proto::InflateError::none && last) err = deflate_->inflater.finish(message_);
    if (err != proto::InflateError::none) {
      fail(static_cast<uint16_t>(proto::close_code_for(err)), proto::describe(err));
      return false;
    }
    if (last) {
      if (op == Opcode::text && !proto::is_valid_utf8(message_)) {
        fail(static_cast<uint16_t>(proto::CloseCode::invalid_payload),
             "invalid UTF-8 in a compressed text message");
        return false;
      }
      deliver(op, reinterpret_cast<const uint8_t*>(message_.data()), message_.size());
      if (socket_ != nullptr) socket_->server().pool().give(std::move(message_));
      message_ = std::string();
    }
    return state_ != State::closed;
  }
  if (first && last) {
    deliver(op, chunk, len);  // the whole message is in the receive buffer: no copy
  } else {
    // A message arriving in pieces is assembled in a buffer borrowed from
    // the loop's pool and returned once delivered.
    if (first && socket_ != nullptr) message_ = socket_->server().pool().take();
    message_.append(reinterpret_cast<const char*>(chunk), len);
    if (last) {
      deliver(op, reinterpret_cast<const uint8_t*>(message_.data()), message_.size());
      if (socket_ != nullptr) socket_->server().pool().give(std::move(message_));
      message_ = std::string();
    }
  }
  return state_ != State::closed;
}

void WsConnection::deliver(Opcode op, const uint8_t* data, size_t len) {
  Message msg{op == Opcode::text ? MessageKind::text : MessageKind::binary,
              std::string_view(reinterpret_cast<const char*>(data), len)};
  server_.count_message_in(len);
  bytes_in_ += len;
  guarded([&] { component_.on_message(self_, msg); });
}

bool WsConnection::rate_limited() {
  log_info("ws: connection {} ({}): rate limit exceeded; closing with 1008", id_, request_.client_address);
  close(static_cast<uint16_t>(proto::CloseCode::policy_violation), "rate limit exceeded",
        CloseCause::rate_limited);
  return state_ != State::closed;
}

bool WsConnection::on_ping(const uint8_t* payload, size_t len) {
  // Each ping costs us a pong: it counts against the rate limit too.
  if (state_ == State::open && rate_.enabled() && !limiter_.allow(rate_, loop_->now(), len, 1)) {
    return rate_limited();
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
  if (state_ == State::open) {
    // The client started the close handshake: echo its code (§5.5.1), then
    // close the TCP connection first, as a server should (§7.1.1).
    send_close_frame(code, {});
    report_close(code, std::string(reason, reason_len), CloseCause::peer_closed, true);
  } else if (state_ == State::closing) {
    report_close(close_code_, close_reason_, close_cause_, true);
  }
  if (socket_ != nullptr) socket_->close_after_flush();
  return false;
}

void WsConnection::on_error(proto::FrameError e) {
  fail(static_cast<uint16_t>(proto::close_code_for(e)), proto::describe(e));
}

// Fails the connection for something the client sent (RFC 6455 §7.1.7).
void WsConnection::fail(uint16_t code, const char* reason) {
  if (state_ == State::closed) return;
  log_info("ws: connection {} ({}): closing with {}: {}", id_, request_.remote_address, code, reason);
  if (state_ == State::open) send_close_frame(code, reason);
  report_close(code, reason, CloseCause::protocol_error, false);
  if (socket_ != nullptr) socket_->close_after_flush();
}

// ------------------------------------------------------------ lifecycle

void WsConnection::report_close(uint16_t code, std::string reason, CloseCause cause, bool clean) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  server_.count_close(cause, code);
  if (const auto* hook = server_.access_hook(); hook != nullptr && *hook) {
    AccessEvent e;
    e.kind = AccessEvent::Kind::close;
    e.connection_id = id_;
    e.remote = request_.remote_address;
    e.remote_port = request_.remote_port;
    e.forwarded_for = request_.header("x-forwarded-for").value_or("");
    e.path = request_.path;
    e.reason = reason;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(Loop::Clock::now() - opened_at_);
    e.close_code = code;
    e.cause = cause;
    e.bytes_in = bytes_in_;
    e.bytes_out = bytes_out_;
    (*hook)(e);
  }
  // A closed connection receives no more publications.
  for (auto& t : topics_) server_.topics().unsubscribe(t, this);
  topics_.clear();
  if (opened_) {
    CloseInfo info{code, std::move(reason), cause, clean};
    guarded([&] { component_.on_close(self_, info); });
  }
}

void WsConnection::on_transport_closed(Socket&, int error) {
  socket_ = nullptr;
  slot_.release();  // not at destruction: a user's handle may keep this object alive
  if (state_ == State::closing) {
    report_close(close_code_, close_reason_, close_cause_, false);
  } else if (state_ == State::open) {
    std::string why = error == 0 ? "connection closed without a close frame"
                                 : std::string("connection error: ") + std::strerror(error);
    report_close(static_cast<uint16_t>(proto::CloseCode::abnormal), std::move(why),
                 CloseCause::transport_closed, false);
  }
  // Break the self-reference at the end of this turn, when no callback of
  // ours is on the stack any more.
  loop_->defer([keep = std::move(self_)] {});
  self_ = Connection();
}

void WsConnection::on_sweep(Socket& s, Loop::Clock::time_point now) {
  if (state_ == State::open && options_.ping_interval.count() > 0) {
    if (ping_outstanding_) {
      if (now - ping_sent_ >= options_.pong_timeout) {
        log_info("ws: connection {} ({}): keepalive timeout: no answer to a ping in {} ms", id_,
                 request_.remote_address, options_.pong_timeout.count());
        auto keep = self_;
        report_close(static_cast<uint16_t>(proto::CloseCode::abnormal), "keepalive timeout",
                     CloseCause::keepalive_timeout, false);
        s.abort(ETIMEDOUT);
      }
    } else if (now - last_received_ >= options_.ping_interval) {
      send_frame(Opcode::ping, nullptr, 0);
      ping_outstanding_ = true;
      ping_sent_ = now;
    }
  } else if (state_ == State::closing && now >= close_deadline_) {
    log_info("ws: connection {} ({}): no close frame from the client within {} ms", id_,
             request_.remote_address, options_.close_timeout.count());
    auto keep = self_;
    report_close(close_code_, close_reason_, close_cause_, false);
    s.abort(ETIMEDOUT);
  }
}

void WsConnection::on_shutdown(Socket&) {
  close(static_cast<uint16_t>(proto::CloseCode::going_away), "server shutting down", CloseCause::shutdown);
}

}  // namespace windlass::detail
