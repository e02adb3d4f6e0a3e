// The consumer of an installed windlass (tests/package/package_test.sh):
// an App with an echo component on a free port; a client thread does the
// WebSocket handshake, sends one masked text frame, checks the echo and
// stops the App. Prints the port and "echo ok"; exit 0 on success.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <windlass/windlass.hpp>

namespace {

class Echo final : public windlass::MessageComponent {
 public:
  void on_message(windlass::Connection& conn, const windlass::Message& msg) override { conn.send(msg); }
};

bool read_some(int fd, std::string& in, size_t want) {
  char buf[4096];
  while (in.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<size_t>(n));
  }
  return true;
}

// Handshake, one "hello" round trip. Returns an error text, empty on success.
std::string client(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string err;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  const std::string req =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  while (in.find("\r\n\r\n") == std::string::npos) {
    if (!read_some(fd, in, in.size() + 1)) {
      ::close(fd);
      return "no handshake response";
    }
  }
  if (in.rfind("HTTP/1.1 101", 0) != 0 || in.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string::npos) {
    ::close(fd);
    return "bad handshake response: " + in.substr(0, in.find("\r\n"));
  }
  in.erase(0, in.find("\r\n\r\n") + 4);
  // FIN + text, masked, 5 bytes: "hello" under mask 1 2 3 4.
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string frame = {static_cast<char>(0x81), static_cast<char>(0x80 | 5)};
  frame.append(reinterpret_cast<const char*>(mask), 4);
  const std::string text = "hello";
  for (size_t i = 0; i < text.size(); ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
  ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
  if (!read_some(fd, in, 7)) err = "no echo";
  else if (in.compare(0, 7, std::string("\x81\x05hello", 7)) != 0) err = "wrong echo";
  ::close(fd);
  return err;
}

}  // namespace

int main() {
  ::alarm(30);  // never hang a test
  windlass::set_log_level("warn");
  windlass::App app({.host = "127.0.0.1", .port = 0, .handle_signals = false, .threads = 1});
  app.route("/", std::make_shared<Echo>());
  app.listen();
  const uint16_t port = app.port();
  std::printf("windlass consumer listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
  std::fflush(stdout);

  std::string err;
  std::thread t([&] {
    err = client(port);
    app.stop();
  });
  app.run();
  t.join();
  if (!err.empty()) {
    std::fprintf(stderr, "windlass consumer: %s\n", err.c_str());
    return 1;
  }
  std::printf("echo ok\n");
  return 0;
}
