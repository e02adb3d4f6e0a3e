// examples/chat: Ratchet's chat tutorial in windlass. Every message a
// client sends goes to every *other* connected client; the page at "/" is
// the client (public/index.html), served on the same port as the socket.
//
// Ratchet keeps an SplObjectStorage of clients and loops over it. windlass
// runs one loop per core, so clients live on several threads: the room is a
// topic instead. publish() encodes the message once and hands it to every
// loop; each loop writes it to its own subscribers.
#include <atomic>
#include <cstdio>

#include "../example_main.hpp"

class Chat final : public windlass::MessageComponent {
 public:
  void on_open(windlass::Connection& conn) override {
    conn.subscribe("chat");
    std::fprintf(stderr, "chat: connection %llu from %s (%d online)\n",
                 static_cast<unsigned long long>(conn.id()), conn.remote_address().c_str(), ++online_);
  }

  void on_message(windlass::Connection& from, const windlass::Message& msg) override {
    from.publish("chat", msg);  // to every subscriber but the sender
  }

  void on_close(windlass::Connection& conn, const windlass::CloseInfo& info) override {
    // Leaving the topic is automatic when a connection closes.
    std::fprintf(stderr, "chat: connection %llu closed (%u %s, %d online)\n",
                 static_cast<unsigned long long>(conn.id()), info.code, to_string(info.cause), --online_);
  }

  void on_error(windlass::Connection& conn, std::exception_ptr e) override {
    std::fprintf(stderr, "chat: error on %llu: %s\n", static_cast<unsigned long long>(conn.id()),
                 windlass::describe_exception(e).c_str());
    conn.close(1011, "internal error");
  }

 private:
  std::atomic<int> online_{0};  // callbacks run on every loop's thread
};

int main(int argc, char** argv) {
  example::Args defaults;
  defaults.server.port = 8080;
  defaults.ws.max_message_size = 64 * 1024;
  // Browsers offer permessage-deflate; one compressor per loop compresses
  // each chat line once for everyone in the room.
  defaults.ws.compression.mode = windlass::CompressionOptions::Mode::shared;
  defaults.public_dir = WINDLASS_CHAT_PUBLIC_DIR;
  example::Args args = example::parse_args(argc, argv, defaults);

  windlass::App app(args.server);
  app.route("/", std::make_shared<Chat>(), args.ws);        // WebSocket upgrades at "/"
  app.http("/*", windlass::static_files(args.public_dir));  // the page and its files
  return example::serve(app, args);
}
