// Address helpers for the I/O layer: listening sockets and peer names.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

namespace windlass::tls {
class TlsContext;
}

namespace windlass::detail {

struct ListenOptions {
  std::string host = "127.0.0.1";  // numeric IPv4/IPv6, a name getaddrinfo resolves, "::" or "0.0.0.0"
  uint16_t port = 0;               // 0: the kernel picks one
  int backlog = 1024;
  bool reuse_port = false;               // SO_REUSEPORT: one listener per loop
  std::shared_ptr<tls::TlsContext> tls;  // set: connections speak TLS (wss://, https://)
};

// Creates a non-blocking listening socket (SO_REUSEADDR, TCP_NODELAY for
// the sockets it accepts, and IPV6_V6ONLY off for "::" so one socket
// takes both families). Throws
// std::runtime_error naming the syscall, the address and errno's text.
int open_listener(const ListenOptions& options);

// The port a socket is bound to (for port 0).
uint16_t local_port(int fd);

// "1.2.3.4" / "::1" (IPv4-mapped IPv6 shown as IPv4) and the port.
std::string address_string(const sockaddr_storage& addr, uint16_t* port = nullptr);

}  // namespace windlass::detail
