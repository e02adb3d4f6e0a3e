#include "ws/ws_server.hpp"

#include "http/http_server.hpp"
#include "log.hpp"
#include "ws/ws_connection.hpp"

namespace windlass::detail {

void WsServer::count_close(CloseCause cause, uint16_t code) noexcept {
  counters_.closes_by_cause[static_cast<size_t>(cause)].add();
  size_t slot = kCloseCodeSlots - 1;
  for (size_t i = 0; i < std::size(kCountedCloseCodes); ++i) {
    if (kCountedCloseCodes[i] == code) slot = i;
  }
  counters_.close_codes[slot].add();
}

proto::HandshakeError WsServer::upgrade(Socket& socket, const proto::HttpRequestHead& head, Request request,
                                        WsRoute& route, uint8_t* rest, size_t rest_len,
                                        Loop::Clock::time_point started) {
  proto::UpgradeRequest up;
  if (auto err = proto::validate_upgrade(head, up); err != proto::HandshakeError::none) return err;
  std::string_view protocol = proto::select_subprotocol(up.protocols, route.subprotocols);
  std::string accept = proto::compute_accept_key(up.key);
  // No extension is negotiated yet: Sec-WebSocket-Extensions is not answered,
  // which per RFC 6455 §9.1 means none is in use.
  proto::build_accept_response(response_, accept, protocol, {});
  socket.write(response_.data(), response_.size());

  counters_.opened.add();
  auto conn = std::make_shared<WsConnection>(socket, *route.component, route.options, std::move(request),
                                             std::string(protocol), *this);
  if (on_access_ != nullptr && *on_access_) {
    AccessEvent e;
    e.kind = AccessEvent::Kind::upgrade;
    e.connection_id = conn->id();
    e.remote = conn->request().remote_address;
    e.remote_port = conn->request().remote_port;
    e.forwarded_for = conn->request().header("x-forwarded-for").value_or("");
    e.method = conn->request().method;
    e.path = conn->request().path;
    e.status = 101;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(Loop::Clock::now() - started);
    (*on_access_)(e);
  }
  socket.set_handler(conn);
  conn->start(rest, rest_len);
  return proto::HandshakeError::none;
}

}  // namespace windlass::detail
