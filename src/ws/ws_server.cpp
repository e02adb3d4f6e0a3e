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

proto::DeflatePolicy deflate_policy(const CompressionOptions& c) {
  proto::DeflatePolicy p;
  p.enabled = c.mode != CompressionOptions::Mode::off;
  p.server_no_context_takeover = c.mode == CompressionOptions::Mode::shared;
  p.client_no_context_takeover = c.client_no_context_takeover;
  p.server_max_window_bits = c.server_max_window_bits;
  p.client_max_window_bits = c.client_max_window_bits;
  p.min_compress_size = c.min_size;
  p.level = c.level;
  p.mem_level = c.mem_level;
  return p;
}

proto::Deflater& WsServer::shared_deflater(const proto::DeflaterConfig& config) {
  for (auto& d : shared_deflaters_) {
    const auto& c = d->config();
    if (c.window_bits == config.window_bits && c.mem_level == config.mem_level && c.level == config.level) {
      return *d;
    }
  }
  shared_deflaters_.push_back(std::make_unique<proto::Deflater>(config));
  return *shared_deflaters_.back();
}

proto::HandshakeError WsServer::upgrade(Socket& socket, const proto::HttpRequestHead& head, Request request,
                                        WsRoute& route, uint8_t* rest, size_t rest_len,
                                        Loop::Clock::time_point started, ConnectionSlot slot) {
  proto::UpgradeRequest up;
  if (auto err = proto::validate_upgrade(head, up); err != proto::HandshakeError::none) return err;
  // RFC 6455 §9.1, §11.3.4: both lists may be split over several lines.
  std::string offered_protocols = proto::join_header_lines(head, "sec-websocket-protocol");
  std::string_view protocol = proto::select_subprotocol(offered_protocols, route.subprotocols);
  std::string accept = proto::compute_accept_key(up.key);
  // permessage-deflate when the route allows it and the client offers an
  // acceptable variant; otherwise Sec-WebSocket-Extensions is not answered,
  // which means no extension is in use (RFC 6455 §9.1).
  proto::DeflateNegotiation deflate;
  if (route.deflate.enabled && !up.extensions.empty()) {
    deflate = proto::negotiate_deflate(proto::join_header_lines(head, "sec-websocket-extensions"), route.deflate);
  }
  proto::build_accept_response(response_, accept, protocol, deflate.accepted() ? deflate.response : "");
  socket.write(response_.data(), response_.size());

  counters_.opened.add();
  auto conn = std::make_shared<WsConnection>(socket, *route.component, route, std::move(request),
                                             std::string(protocol), *this,
                                             deflate.accepted() ? &deflate.params : nullptr);
  conn->hold_slot(std::move(slot));
  if (on_access_ != nullptr && *on_access_) {
    AccessEvent e;
    e.kind = AccessEvent::Kind::upgrade;
    e.connection_id = conn->id();
    e.remote = conn->request().remote_address;
    e.remote_port = conn->request().remote_port;
    if (conn->request().client_address != conn->request().remote_address) e.client = conn->request().client_address;
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
