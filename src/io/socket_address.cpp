#include "io/socket_address.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace windlass::detail {

namespace {
[[noreturn]] void fail(const std::string& what, const ListenOptions& o, int err) {
  throw std::runtime_error(what + " " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(err));
}
}  // namespace

int open_listener(const ListenOptions& o) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(o.port);
  const char* host = o.host.empty() ? nullptr : o.host.c_str();
  if (int rc = ::getaddrinfo(host, port.c_str(), &hints, &res); rc != 0) {
    throw std::runtime_error("getaddrinfo " + o.host + ": " + ::gai_strerror(rc));
  }
  int fd = -1;
  int last_err = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (o.reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    // Set once here, inherited by every accepted socket (Linux copies it
    // from the listener): no setsockopt per connection.
    if (ai->ai_protocol == IPPROTO_TCP || ai->ai_protocol == 0) {
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (ai->ai_family == AF_INET6) {
      // "::" should accept IPv4 clients too, whatever net.ipv6.bindv6only says.
      int zero = 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, o.backlog) == 0) break;
    last_err = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) fail("bind/listen", o, last_err);
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  uint16_t port = 0;
  address_string(addr, &port);
  return port;
}

std::string address_string(const sockaddr_storage& addr, uint16_t* port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    if (port) *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (port) *port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    }
  } else {
    return "unknown";
  }
  return buf;
}

}  // namespace windlass::detail
