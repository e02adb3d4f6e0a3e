#include "ws/ws_server.hpp"

#include "http/http_server.hpp"
#include "log.hpp"
#include "proto/ws_handshake.hpp"
#include "ws/ws_connection.hpp"

namespace windlass::detail {

bool WsServer::upgrade(Socket& socket, const proto::HttpRequestHead& head, Request request,
                       WsRoute& route, uint8_t* rest, size_t rest_len) {
  proto::UpgradeRequest up;
  if (auto err = proto::validate_upgrade(head, up); err != proto::HandshakeError::none) {
    int status = proto::http_status_for(err);
    std::string extra;
    if (status == 426) extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    if (status == 405) extra = "Allow: GET\r\n";
    log_info("ws: {} {} {} -> {} ({})", request.remote_address, head.method, head.path, status,
             proto::describe(err));
    write_error_response(socket, status, proto::describe(err), extra);
    return false;
  }
  std::string_view protocol = proto::select_subprotocol(up.protocols, route.subprotocols);
  std::string accept = proto::compute_accept_key(up.key);
  // No extension is negotiated yet: Sec-WebSocket-Extensions is not answered,
  // which per RFC 6455 §9.1 means none is in use.
  proto::build_accept_response(response_, accept, protocol, {});
  socket.write(response_.data(), response_.size());

  ++counters_.opened;
  auto conn = std::make_shared<WsConnection>(socket, *route.component, route.options, std::move(request),
                                             std::string(protocol), *this);
  socket.set_handler(conn);
  conn->start(rest, rest_len);
  return true;
}

}  // namespace windlass::detail
