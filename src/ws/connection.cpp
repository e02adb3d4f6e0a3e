// The public Connection handle over WsConnection.
#include "windlass/connection.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include "loop/thread_check.hpp"
#include "proto/ws_frame.hpp"
#include "windlass/broker.hpp"
#include "windlass/component.hpp"
#include "windlass/loop.hpp"
#include "ws/ws_connection.hpp"
#include "ws/ws_server.hpp"

namespace windlass {

namespace detail {
void contract_violation(const char* what, const char* detail) {
  std::fprintf(stderr, "windlass: %s: %s (see the thread contract in connection.hpp)\n", what, detail);
  std::abort();
}
}  // namespace detail

using detail::WsConnection;
using proto::Opcode;

namespace {

// The slot's header: readable from any thread for as long as the App lives.
// Without a member call: the slot may hold no live connection (a handle
// kept after its close), as in WsConnection::id_in_slot.
const detail::ConnectionSlotHeader& header_of(const WsConnection* impl) noexcept {
  return *reinterpret_cast<const detail::ConnectionSlotHeader*>(reinterpret_cast<const std::byte*>(impl) -
                                                                detail::kSlotHeaderSize);
}

// Off the loop thread, the call is copied to the owner loop: the
// connection's state is only ever touched by its own thread. Kept out of
// line so the common case below stays small.
[[gnu::noinline]] SendStatus post_send(WsConnection* impl, uint64_t id, Loop* loop, Opcode op, const void* data,
                                       size_t len) {
  if (header_of(impl).id.load(std::memory_order_acquire) != id || header_of(impl).open.load(std::memory_order_acquire) == 0) {
    return SendStatus::closed;
  }
  loop->post([impl, id, op, bytes = std::string(static_cast<const char*>(data), len)] {
    if (WsConnection::id_in_slot(impl) == id) impl->send(op, bytes.data(), bytes.size());
  });
  return SendStatus::queued;
}

}  // namespace

WsConnection* Connection::live() const noexcept {
  if (impl_ == nullptr || WsConnection::id_in_slot(impl_) != id_) return nullptr;
  return impl_;
}

namespace {
inline SendStatus send_on_loop(const Connection& c, Opcode op, const void* data, size_t len) {
  WsConnection* impl = c.impl();
  if (impl == nullptr) return SendStatus::closed;
  if (c.loop()->in_loop_thread()) {
    if (WsConnection::id_in_slot(impl) != c.id()) return SendStatus::closed;
    return impl->send(op, data, len);
  }
  return post_send(impl, c.id(), c.loop(), op, data, len);
}
}  // namespace

SendStatus Connection::send(std::string_view text) const {
  return send_on_loop(*this, Opcode::text, text.data(), text.size());
}

SendStatus Connection::send_binary(std::span<const std::byte> data) const {
  return send_on_loop(*this, Opcode::binary, data.data(), data.size());
}

SendStatus Connection::send_binary(std::string_view data) const {
  return send_on_loop(*this, Opcode::binary, data.data(), data.size());
}

SendStatus Connection::send(const Message& m) const {
  return send_on_loop(*this, m.is_text() ? Opcode::text : Opcode::binary, m.data.data(), m.data.size());
}

void Connection::close(uint16_t code, std::string_view reason) const {
  if (impl_ == nullptr) return;
  if (loop_->in_loop_thread()) {
    if (WsConnection* c = live()) c->close(code, reason, CloseCause::server_closed);
  } else {
    loop_->post([impl = impl_, id = id_, code, r = std::string(reason)] {
      if (WsConnection::id_in_slot(impl) == id) impl->close(code, r, CloseCause::server_closed);
    });
  }
}

bool Connection::subscribe(std::string_view topic) const {
  detail::check_loop_thread(loop_, "Connection::subscribe");
  WsConnection* c = live();
  return c != nullptr && c->server().broker().subscribe(*this, topic);
}

bool Connection::unsubscribe(std::string_view topic) const {
  detail::check_loop_thread(loop_, "Connection::unsubscribe");
  WsConnection* c = live();
  return c != nullptr && c->server().broker().unsubscribe(*this, topic);
}

void Connection::publish(std::string_view topic, std::string_view data, MessageKind kind) const {
  if (impl_ == nullptr) return;
  // The endpoint and its server outlive the slot's occupants: reading
  // which broker to use is safe from any thread.
  // Through the slot's header, without a member call on what may be no
  // connection.
  header_of(impl_).endpoint->server().broker().publish(topic, Message{kind, data}, PublishOptions{.except = id_});
}

bool Connection::is_open() const noexcept {
  return impl_ != nullptr && header_of(impl_).id.load(std::memory_order_acquire) == id_ &&
         header_of(impl_).open.load(std::memory_order_acquire) != 0;
}

size_t Connection::buffered_amount() const noexcept {
  if (impl_ == nullptr) return 0;
  const auto& h = header_of(impl_);
  const size_t n = h.buffered.load(std::memory_order_acquire);
  // Read the id after the value: if it is still ours, so was the value.
  return h.id.load(std::memory_order_acquire) == id_ ? n : 0;
}

std::string Connection::remote_address() const {
  detail::check_loop_thread(loop_, "Connection::remote_address");
  WsConnection* c = live();
  return c != nullptr && c->socket() != nullptr ? c->socket()->peer().to_string() : std::string();
}

uint16_t Connection::remote_port() const {
  detail::check_loop_thread(loop_, "Connection::remote_port");
  WsConnection* c = live();
  return c != nullptr && c->socket() != nullptr ? c->socket()->peer().port : 0;
}

std::string_view Connection::subprotocol() const {
  detail::check_loop_thread(loop_, "Connection::subprotocol");
  WsConnection* c = live();
  return c != nullptr ? c->subprotocol() : std::string_view();
}

const Request& Connection::request() const {
  static const Request empty;
  detail::check_loop_thread(loop_, "Connection::request");
  WsConnection* c = live();
  const Request* r = c != nullptr ? c->server().current_request(c) : nullptr;
  if (r == nullptr) {
    if constexpr (detail::kChecks) {
      detail::contract_violation("Connection::request", "called outside on_upgrade (the request is not kept)");
    }
    return empty;
  }
  return *r;
}

void* Connection::state_ptr(const std::type_info& type) const {
  detail::check_loop_thread(loop_, "Connection::state");
  WsConnection* c = live();
  if (c == nullptr) throw std::logic_error("Connection::state(): the connection is gone");
  const StateTraits& traits = c->endpoint().route().state;
  if (traits.empty()) throw std::logic_error("Connection::state(): this route's component declares no state");
  if constexpr (detail::kChecks) {
    if (*traits.type != type) {
      std::string what = std::string("asked for ") + type.name() + ", the component declares " + traits.type->name();
      detail::contract_violation("Connection::state", what.c_str());
    }
  }
  return c->state();
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

const char* to_string(SendStatus status) noexcept {
  switch (status) {
    case SendStatus::queued: return "queued";
    case SendStatus::backpressure: return "backpressure";
    case SendStatus::dropped: return "dropped";
    case SendStatus::closed: return "closed";
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
