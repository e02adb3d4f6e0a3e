// A small blocking WebSocket client for in-process tests: it sends frames
// exactly as told (masked, any opcode or bits) and reads raw frames back,
// so tests can play a misbehaving peer. Not for production use.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "proto/ws_frame.hpp"

namespace windlass::test {

struct Frame {
  bool fin = true;
  proto::Opcode op = proto::Opcode::text;
  std::string payload;
  uint16_t close_code() const {
    return payload.size() >= 2 ? static_cast<uint16_t>((uint8_t(payload[0]) << 8) | uint8_t(payload[1])) : 1005;
  }
};

class TestClient {
 public:
  explicit TestClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~TestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  void write_raw(std::string_view bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Reads until the end of an HTTP response head; returns it (empty on timeout/EOF).
  std::string read_http_head(int timeout_ms = 3000) {
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      if (!fill(timeout_ms)) return {};
    }
    size_t end = buf_.find("\r\n\r\n") + 4;
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end);
    return head;
  }

  // Sends an upgrade request for `path`; returns the response head.
  std::string handshake(const std::string& path = "/", const std::string& extra_headers = "") {
    write_raw("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
              extra_headers + "\r\n");
    return read_http_head();
  }

  void send_frame(proto::Opcode op, std::string_view payload, bool fin = true, uint8_t rsv = 0) {
    uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    uint8_t header[proto::kMaxFrameHeader];
    size_t n = proto::encode_frame_header(header, op, payload.size(), fin, false, mask);
    header[0] |= static_cast<uint8_t>(rsv << 4);
    std::string frame(reinterpret_cast<char*>(header), n);
    std::string body(payload);
    proto::apply_mask(reinterpret_cast<uint8_t*>(body.data()), body.size(), mask);
    write_raw(frame + body);
  }

  void send_close(uint16_t code, std::string_view reason = {}) {
    std::string p;
    p += static_cast<char>(code >> 8);
    p += static_cast<char>(code & 0xff);
    p += reason;
    send_frame(proto::Opcode::close, p);
  }

  // Reads one frame; nullopt on timeout or EOF.
  std::optional<Frame> read_frame(int timeout_ms = 3000) {
    for (;;) {
      if (buf_.size() >= 2) {
        auto b = [&](size_t i) { return static_cast<uint8_t>(buf_[i]); };
        size_t len = b(1) & 0x7f, pos = 2;
        if (len == 126 && buf_.size() >= 4) {
          len = (size_t(b(2)) << 8) | b(3);
          pos = 4;
        } else if (len == 127 && buf_.size() >= 10) {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | b(2 + size_t(i));
          pos = 10;
        } else if (len >= 126) {
          pos = 0;
        }
        if (pos != 0 && buf_.size() >= pos + len) {
          Frame f;
          f.fin = b(0) & 0x80;
          f.op = static_cast<proto::Opcode>(b(0) & 0x0f);
          f.payload = buf_.substr(pos, len);
          buf_.erase(0, pos + len);
          return f;
        }
      }
      if (!fill(timeout_ms)) return std::nullopt;
    }
  }

  // Everything until the server closes the connection (or the timeout).
  std::string read_until_eof(int timeout_ms = 3000) {
    wait_eof(timeout_ms);
    return std::exchange(buf_, std::string());
  }

  // Sends raw bytes and returns the response head (plain HTTP requests).
  std::string request(const std::string& raw) {
    write_raw(raw);
    return read_http_head();
  }

  // True when the server closes the TCP connection within the timeout.
  bool wait_eof(int timeout_ms = 3000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!fill(50)) {
        if (eof_) return true;
      }
    }
    return eof_;
  }

 private:
  bool fill(int timeout_ms) {
    if (eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

}  // namespace windlass::test
