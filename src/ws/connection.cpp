// The public Connection handle over WsConnection.
#include "windlass/connection.hpp"

#include <exception>
#include <stdexcept>
#include <string>

#include "proto/ws_frame.hpp"
#include "windlass/component.hpp"
#include "windlass/loop.hpp"
#include "ws/ws_connection.hpp"
#include "ws/ws_server.hpp"

namespace windlass {

using detail::WsConnection;
using proto::Opcode;

namespace {
// Off the loop thread, the call is copied to the owner loop: the
// connection's state is only ever touched by its own thread. Kept out of
// line so the common case below stays small.
[[gnu::noinline]] bool post_send(const std::shared_ptr<WsConnection>& impl, Opcode op, const void* data,
                                 size_t len) {
  impl->loop()->post([impl, op, bytes = std::string(static_cast<const char*>(data), len)] {
    impl->send(op, bytes.data(), bytes.size());
  });
  return true;
}

inline bool send_on_loop(const std::shared_ptr<WsConnection>& impl, Opcode op, const void* data, size_t len) {
  if (!impl) return false;
  if (impl->loop()->in_loop_thread()) return impl->send(op, data, len);
  return post_send(impl, op, data, len);
}
}  // namespace

bool Connection::send(std::string_view text) const {
  return send_on_loop(impl_, Opcode::text, text.data(), text.size());
}

bool Connection::send_binary(std::span<const std::byte> data) const {
  return send_on_loop(impl_, Opcode::binary, data.data(), data.size());
}

bool Connection::send_binary(std::string_view data) const {
  return send_on_loop(impl_, Opcode::binary, data.data(), data.size());
}

bool Connection::send(const Message& m) const {
  return send_on_loop(impl_, m.is_text() ? Opcode::text : Opcode::binary, m.data.data(), m.data.size());
}

void Connection::close(uint16_t code, std::string_view reason) const {
  if (!impl_) return;
  Loop* loop = impl_->loop();
  if (loop->in_loop_thread()) {
    impl_->close(code, reason, CloseCause::server_closed);
  } else {
    loop->post(
        [impl = impl_, code, r = std::string(reason)] { impl->close(code, r, CloseCause::server_closed); });
  }
}

bool Connection::subscribe(std::string_view topic) const {
  return impl_ && impl_->subscribe(topic);
}
bool Connection::unsubscribe(std::string_view topic) const {
  return impl_ && impl_->unsubscribe(topic);
}

void Connection::publish(std::string_view topic, std::string_view data, MessageKind kind) const {
  if (!impl_) return;
  impl_->server().hub().publish(topic, detail::make_shared_frame(kind == MessageKind::binary, data),
                                impl_->id());
}

bool Connection::is_open() const noexcept {
  return impl_ && impl_->is_open();
}
size_t Connection::buffered_amount() const noexcept {
  return impl_ ? impl_->buffered_amount() : 0;
}
uint64_t Connection::id() const noexcept {
  return impl_ ? impl_->id() : 0;
}

const Request& Connection::request() const noexcept {
  static const Request empty;
  return impl_ ? impl_->request() : empty;
}

const std::string& Connection::remote_address() const noexcept {
  return request().remote_address;
}

const std::string& Connection::subprotocol() const noexcept {
  static const std::string empty;
  return impl_ ? impl_->subprotocol() : empty;
}

Loop* Connection::loop() const noexcept {
  return impl_ ? impl_->loop() : nullptr;
}

std::any& Connection::data() const {
  if (!impl_) throw std::logic_error("Connection::data() on an empty handle");
  return impl_->data();
}

const char* to_string(CloseCause cause) noexcept {
  switch (cause) {
    case CloseCause::peer_closed: return "peer_closed";
    case CloseCause::server_closed: return "server_closed";
    case CloseCause::protocol_error: return "protocol_error";
    case CloseCause::keepalive_timeout: return "keepalive_timeout";
    case CloseCause::slow_consumer: return "slow_consumer";
    case CloseCause::rate_limited: return "rate_limited";
    case CloseCause::shutdown: return "shutdown";
    case CloseCause::transport_closed: return "transport_closed";
  }
  return "unknown";
}

std::string describe_exception(std::exception_ptr e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
  return "no exception";
}

}  // namespace windlass
