// A benchmark peer: echo or chat over Boost.Beast (Boost 1.74).
//
//   windlass-peer-beast PORT echo|chat
//
// echo: every message goes back to its sender as it came (text or binary).
// chat: every message goes to every other connected client, as
// examples/chat does. One thread, no TLS, no compression, 127.0.0.1 only.
//
// Each session keeps one read outstanding into its own flat_buffer. In echo
// mode it writes the buffer straight back and reads again once the write is
// done; in chat mode a message is copied once into a shared string that
// every other session queues, and each session writes its queue one
// message at a time (Beast allows one write in flight per stream).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Session;
using Room = std::unordered_set<Session*>;  // chat: sessions past their handshake

class Session : public std::enable_shared_from_this<Session> {
 public:
  // room is null in echo mode.
  Session(tcp::socket socket, Room* room) : ws_(std::move(socket)), room_(room) {}
  ~Session() { leave(); }

  void start() {
    ws_.read_message_max(16 << 20);
    ws_.auto_fragment(false);  // one frame per message, as the other servers send
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      if (self->room_) self->room_->insert(self.get());
      self->read();
    });
  }

  // Chat: queues a message for this client; writes never overlap.
  void send(std::shared_ptr<const std::string> data, bool text) {
    queue_.push_back({std::move(data), text});
    if (queue_.size() == 1) write_next();
  }

 private:
  struct Outgoing {
    std::shared_ptr<const std::string> data;
    bool text;
  };

  void leave() {
    if (room_) room_->erase(this);
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->leave();  // closed or failed: pending handlers are the last owners
      if (self->room_) {
        self->broadcast();
      } else {
        self->echo();
      }
    });
  }

  void echo() {
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }

  void broadcast() {
    auto data = std::make_shared<const std::string>(beast::buffers_to_string(buffer_.data()));
    buffer_.consume(buffer_.size());
    const bool text = ws_.got_text();
    for (Session* s : *room_)
      if (s != this) s->send(data, text);
    read();
  }

  void write_next() {
    ws_.text(queue_.front().text);
    ws_.async_write(net::buffer(*queue_.front().data),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return;
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) self->write_next();
                    });
  }

  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  std::deque<Outgoing> queue_;
  Room* room_;
};

void accept(tcp::acceptor& acceptor, Room* room) {
  acceptor.async_accept([&acceptor, room](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket), room)->start();
    }
    accept(acceptor, room);
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[2], "echo") != 0 && std::strcmp(argv[2], "chat") != 0)) {
    std::fprintf(stderr, "usage: %s PORT echo|chat\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  const bool chat = std::strcmp(argv[2], "chat") == 0;

  Room room;  // outlives the io_context, whose destruction ends the sessions
  net::io_context ioc{1};
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint where(net::ip::make_address("127.0.0.1"), port);
  acceptor.open(where.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(where);
  acceptor.listen(net::socket_base::max_listen_connections);
  accept(acceptor, chat ? &room : nullptr);

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });

  std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  ioc.run();
  return 0;
}
