#include "components.hpp"

#include "logging.hpp"

namespace windlass::server {

void ServerComponent::on_open(Connection& conn) {
  // Counted before anything that could throw: a connection that reached
  // on_open always gets its on_close, which takes it off again.
  open_.fetch_add(1, std::memory_order_relaxed);
  opened(conn);
}

void ServerComponent::on_close(Connection& conn, const CloseInfo& info) {
  open_.fetch_sub(1, std::memory_order_relaxed);
  closed(conn, info);
}

void ServerComponent::on_error(Connection& conn, std::exception_ptr error) {
  server_logger().error("component error on connection {}: {}", conn.id(),
                        describe_exception(error));
  conn.close(1011, "internal error");
}

void ChatComponent::opened(Connection& conn) {
  // Leaving the topic is automatic when the connection closes.
  conn.subscribe(topic_);
}

void ChatComponent::on_message(Connection& from, const Message& msg) {
  from.publish(topic_, msg);  // to every member but the sender
}

void EchoComponent::on_message(Connection& conn, const Message& msg) {
  conn.send(msg);
}

std::shared_ptr<ServerComponent> make_component(const RouteConfig& route) {
  switch (route.component) {
    case ComponentKind::chat: return std::make_shared<ChatComponent>(route.topic, route.subprotocols);
    case ComponentKind::echo: return std::make_shared<EchoComponent>(route.subprotocols);
    case ComponentKind::static_files: break;
  }
  return nullptr;
}

}  // namespace windlass::server
