// A benchmark peer: echo or chat over websocketpp 0.8 (Boost.Asio transport).
//
//   windlass-peer-websocketpp PORT echo|chat
//
// echo: every message goes back to its sender as it came (text or binary).
// chat: every message goes to every other connected client, as
// examples/chat does. One thread, no TLS, no compression, 127.0.0.1 only.
//
// The endpoint's config is websocketpp's asio config with the knobs a
// single-threaded server is meant to turn: no locks (concurrency::none), no
// strands (enable_multithreading = false), logging compiled out.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

struct config : websocketpp::config::asio {
  using type = config;
  using base = websocketpp::config::asio;

  using concurrency_type = websocketpp::concurrency::none;
  using elog_type = websocketpp::log::basic<concurrency_type, websocketpp::log::elevel>;
  using alog_type = websocketpp::log::basic<concurrency_type, websocketpp::log::alevel>;
  static const bool enable_multithreading = false;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
  static const size_t max_message_size = 16 << 20;

  struct transport_config : base::transport_config {
    using concurrency_type = type::concurrency_type;
    using elog_type = type::elog_type;
    using alog_type = type::alog_type;
    static const bool enable_multithreading = false;
  };
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
};

using server = websocketpp::server<config>;
namespace net = websocketpp::lib::asio;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[2], "echo") != 0 && std::strcmp(argv[2], "chat") != 0)) {
    std::fprintf(stderr, "usage: %s PORT echo|chat\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  const bool chat = std::strcmp(argv[2], "chat") == 0;

  server s;
  s.init_asio();
  s.set_reuse_addr(true);
  s.set_listen_backlog(net::socket_base::max_listen_connections);
  s.set_tcp_post_init_handler([&](websocketpp::connection_hdl h) {
    s.get_con_from_hdl(h)->get_socket().set_option(net::ip::tcp::no_delay(true));
  });

  // Chat: the connections between their open and close handlers.
  std::unordered_set<server::connection_ptr> room;
  if (chat) {
    s.set_open_handler([&](websocketpp::connection_hdl h) { room.insert(s.get_con_from_hdl(h)); });
    s.set_close_handler([&](websocketpp::connection_hdl h) { room.erase(s.get_con_from_hdl(h)); });
    s.set_message_handler([&](websocketpp::connection_hdl h, server::message_ptr msg) {
      const server::connection_ptr from = s.get_con_from_hdl(h);
      for (const auto& c : room)
        if (c != from) c->send(msg);  // framed once per recipient, as websocketpp does
    });
  } else {
    s.set_message_handler([&](websocketpp::connection_hdl h, server::message_ptr msg) {
      websocketpp::lib::error_code ec;
      s.send(h, msg, ec);  // the received message itself: same opcode, same payload
    });
  }

  s.listen(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  s.start_accept();

  net::signal_set signals(s.get_io_service(), SIGINT, SIGTERM);
  signals.async_wait([&](const net::error_code&, int) {
    s.stop_listening();
    s.stop();
  });

  net::error_code ec;
  std::printf("listening on 127.0.0.1:%u\n", s.get_local_endpoint(ec).port());
  std::fflush(stdout);
  s.run();
  return 0;
}
