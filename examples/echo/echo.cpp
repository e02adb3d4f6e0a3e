// examples/echo: every message comes back as it was sent. The server that
// the conformance suite and the benchmarks point at (`make echo`).
#include "../example_main.hpp"

class Echo final : public windlass::MessageComponent {
 public:
  void on_message(windlass::Connection& conn, const windlass::Message& msg) override {
    conn.send(msg);
  }
};

int main(int argc, char** argv) {
  example::Args defaults;
  defaults.server.port = 9001;
  defaults.ws.max_message_size = 16u << 20;   // Autobahn's 9.x cases go up to 16 MiB
  defaults.server.max_send_queue = 64u << 20;
  example::Args args = example::parse_args(argc, argv, defaults);

  windlass::App app(args.server);
  app.route("/", std::make_shared<Echo>(), args.ws);
  return example::serve(app, args);
}
