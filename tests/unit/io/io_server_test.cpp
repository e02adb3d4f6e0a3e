// IoServer and Socket against real TCP clients, on both of the loop's
// backends: whatever the kernel does with the bytes (short reads, partial
// sends, a receive ring run dry), the handler gets every byte in order and
// the peer reads every byte in order; a socket closed while the kernel
// still holds its operations is freed only after them; lingering close
// delivers the last bytes to a peer that is still sending.
#include "io/io_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io/loop_resources.hpp"
#include "log.hpp"
#include "windlass/loop.hpp"

using namespace std::chrono_literals;
using windlass::IoBackend;
using windlass::Loop;

namespace windlass::detail {
namespace {

std::string pattern(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

// One accepted socket's handler: records what arrives, and does what the
// test asks with it.
struct Conn final : SocketHandler {
  Socket* socket = nullptr;
  std::string got;
  bool closed = false;
  int error = 0;
  std::function<void(Socket&, std::string_view)> on_bytes;
  void on_data(Socket& s, uint8_t* data, size_t len) override {
    got.append(reinterpret_cast<const char*>(data), len);
    if (on_bytes) on_bytes(s, std::string_view(reinterpret_cast<const char*>(data), len));
  }
  void on_transport_closed(Socket&, int e) override {
    closed = true;
    error = e;
    socket = nullptr;
  }
  void on_shutdown(Socket& s) override { s.close_after_flush(); }
};

// An IoServer on its own loop thread; the test thread is the client.
class Server {
 public:
  Server(IoBackend backend, IoOptions options) : loop(backend) {
    io = std::make_unique<IoServer>(loop, res, options, [this](Socket& s) {
      conns.push_back(std::make_unique<Conn>());
      conns.back()->socket = &s;
      if (on_accept) on_accept(*conns.back());
      return conns.back().get();
    });
    ListenerOptions lo;
    lo.host = "127.0.0.1";
    port = io->listen(lo);
  }
  ~Server() { stop(); }
  void start() {
    thread = std::thread([this] { loop.run(); });
  }
  // Stops the loop; the IoServer is then torn down on the test thread (the
  // path App takes for every loop but the first).
  void stop() {
    if (thread.joinable()) {
      loop.stop();
      thread.join();
    }
  }
  template <class F>
  auto on_loop(F fn) {
    std::promise<decltype(fn())> p;
    loop.post([&] {
      if constexpr (std::is_void_v<decltype(fn())>) {
        fn();
        p.set_value();
      } else {
        p.set_value(fn());
      }
    });
    return p.get_future().get();
  }
  template <class Pred>
  bool wait_until(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (on_loop(pred)) return true;
      std::this_thread::sleep_for(2ms);
    }
    return on_loop(pred);
  }

  Loop loop;
  LoopResources res;
  std::vector<std::unique_ptr<Conn>> conns;  // outlive the IoServer, whose teardown tells them
  std::function<void(Conn&)> on_accept;      // set before start()
  std::unique_ptr<IoServer> io;
  std::thread thread;
  uint16_t port = 0;
};

// A blocking TCP client.
class Client {
 public:
  explicit Client(uint16_t port, int rcvbuf = 0) : Client() {
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    connect(port);
  }
  // The socket only; connect() later.
  Client() : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  void connect(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() {
    if (fd >= 0) ::close(fd);
  }
  bool send_all(std::string_view data) const {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Up to `n` bytes within the timeout; stops early at EOF (eof set) or an error (error set).
  std::string read(size_t n, std::chrono::milliseconds timeout = 5000ms, size_t chunk = 65536) {
    std::string out;
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::vector<char> buf(chunk);
    while (out.size() < n && std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t r = ::recv(fd, buf.data(), std::min(chunk, n - out.size()), 0);
      if (r == 0) {
        eof = true;
        break;
      }
      if (r < 0) {
        error = errno;
        break;
      }
      out.append(buf.data(), static_cast<size_t>(r));
    }
    return out;
  }
  int fd = -1;
  bool connected = false;
  bool eof = false;
  int error = 0;
};

class IoServerTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  void SetUp() override {
    if (GetParam() == IoBackend::io_uring && !Loop::io_uring_unavailable().empty()) {
      GTEST_SKIP() << "io_uring unavailable: " << Loop::io_uring_unavailable();
    }
  }
  std::unique_ptr<Server> make(IoOptions o = {}) {
    o.sweep_interval = 20ms;
    return std::make_unique<Server>(GetParam(), o);
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, IoServerTest, ::testing::Values(IoBackend::epoll, IoBackend::io_uring),
                         [](const auto& p) { return std::string(windlass::to_string(p.param)); });

}  // namespace

TEST_P(IoServerTest, every_byte_arrives_in_order_through_short_reads) {
  auto server = make();
  server->start();
  Client c(server->port);
  ASSERT_TRUE(c.connected);
  const std::string data = pattern(3u << 20, 7);
  std::mt19937 rng(3);
  for (size_t at = 0; at < data.size();) {
    const size_t n = std::min<size_t>(data.size() - at, 1 + rng() % 70000);
    ASSERT_TRUE(c.send_all(std::string_view(data).substr(at, n)));
    at += n;
    if (rng() % 8 == 0) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(server->wait_until([&] { return !server->conns.empty() && server->conns[0]->got.size() >= data.size(); }));
  EXPECT_TRUE(server->on_loop([&] { return server->conns[0]->got == data; }));
}

// The peer reads slowly through a small receive buffer: the kernel takes
// part of each send, and the rest must go first next time, ahead of what
// was queued meanwhile (copied bytes and a payload shared by reference).
TEST_P(IoServerTest, partial_sends_keep_every_byte_in_order) {
  auto server = make();
  std::string expected;
  auto shared = std::make_shared<const std::string>(pattern(100'000, 11));
  for (int i = 0; i < 40; ++i) expected += pattern(20'000 + static_cast<size_t>(i) * 97, static_cast<unsigned>(i));
  expected += *shared;
  for (int i = 0; i < 200; ++i) expected += pattern(30, 1000u + static_cast<unsigned>(i));
  server->on_accept = [&](Conn& conn) {
    conn.on_bytes = [&](Socket& s, std::string_view) {
      if (s.buffered_amount() > 0 || s.closing()) return;  // "go" came in two pieces
      size_t at = 0;
      for (int i = 0; i < 40; ++i) {
        const size_t n = 20'000 + static_cast<size_t>(i) * 97;
        ASSERT_TRUE(s.write(expected.data() + at, n));
        at += n;
      }
      ASSERT_TRUE(s.write_shared(shared));
      at += shared->size();
      // Small frames after the large ones: they queue behind what waits.
      s.loop().defer([&s, at, &expected] {
        for (size_t off = at; off < expected.size(); off += 30) ASSERT_TRUE(s.write(expected.data() + off, 30));
      });
    };
  };
  server->start();
  Client c(server->port, 4096);
  ASSERT_TRUE(c.connected);
  ASSERT_TRUE(c.send_all("go"));
  std::string got;
  while (got.size() < expected.size()) {
    std::string part = c.read(expected.size() - got.size(), 10s, 1500);
    if (part.empty()) break;
    got += part;
    std::this_thread::sleep_for(100us);
  }
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  EXPECT_TRUE(server->wait_until([&] { return server->io->queued_bytes() == 0; }));
}

// Replies of 8 KiB and more, written while their input is handled, leave
// at once with a system call of their own on io_uring too
// (IoOptions::direct_send_min); a peer reading slowly through a small
// receive buffer makes the kernel take part of one, and every reply after
// it must wait behind the rest. With direct_send_min 0 every reply rides
// the ring. Either way the peer reads back exactly what it sent.
TEST_P(IoServerTest, large_replies_written_at_once_keep_every_byte_in_order) {
  for (const size_t direct_min : {size_t{8192}, size_t{0}}) {
    SCOPED_TRACE(direct_min);
    IoOptions o;
    o.direct_send_min = direct_min;
    auto server = make(o);
    server->on_accept = [](Conn& conn) {
      // A small send buffer, so the kernel takes only part of a reply
      // whenever the peer pauses.
      const int sndbuf = 16384;
      ::setsockopt(conn.socket->fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      conn.on_bytes = [](Socket& s, std::string_view bytes) { ASSERT_TRUE(s.write(bytes.data(), bytes.size())); };
    };
    server->start();
    Client c(server->port, 4096);
    ASSERT_TRUE(c.connected);
    const std::string data = pattern(2u << 20, 5);
    std::thread writer([&] {
      std::mt19937 rng(9);
      for (size_t at = 0; at < data.size();) {
        const size_t n = std::min<size_t>(data.size() - at, 9000 + rng() % 40000);
        if (!c.send_all(std::string_view(data).substr(at, n))) return;
        at += n;
        if (rng() % 4 == 0) std::this_thread::sleep_for(200us);
      }
    });
    std::string got;
    std::mt19937 pauses(4);
    while (got.size() < data.size()) {
      std::string part = c.read(data.size() - got.size(), 10s, 3000);
      if (part.empty()) break;
      got += part;
      if (pauses() % 16 == 0) std::this_thread::sleep_for(1ms);
    }
    writer.join();
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
    const uint64_t direct = server->on_loop([&] { return server->io->direct_sends(); });
    if (GetParam() == IoBackend::io_uring && direct_min != 0) {
      EXPECT_GT(direct, 0u);
    } else {
      EXPECT_EQ(direct, 0u);
    }
    EXPECT_TRUE(server->wait_until([&] { return server->io->queued_bytes() == 0; }));
  }
}

// A socket closed (aborted) while its receive is armed and a send waits in
// the kernel for room: the handler hears of it at once, the slot comes back
// only after the kernel's last completions, and the next connections
// (which may reuse the slot and the descriptor number) work.
TEST_P(IoServerTest, close_while_a_receive_and_a_send_are_in_flight) {
  auto server = make();
  const std::string big = pattern(8u << 20, 5);
  server->on_accept = [&](Conn& conn) {
    conn.on_bytes = [&](Socket& s, std::string_view bytes) {
      if (bytes.substr(0, 4) == "fill") {
        ASSERT_TRUE(s.write(big.data(), big.size()));  // more than the socket buffers hold
      } else {
        ASSERT_TRUE(s.write(bytes.data(), bytes.size()));  // echo
      }
    };
  };
  server->start();
  {
    Client stuck(server->port, 4096);  // never reads
    ASSERT_TRUE(stuck.send_all("fill"));
    ASSERT_TRUE(server->wait_until([&] {
      return !server->conns.empty() && server->conns[0]->got == "fill" && server->io->queued_bytes() > 0;
    }));
    std::this_thread::sleep_for(20ms);  // the send is in the kernel, waiting for room
    ASSERT_TRUE(stuck.send_all("more input"));
    server->on_loop([&] { server->conns[0]->socket->abort(ECONNRESET); });
    EXPECT_TRUE(server->on_loop([&] { return server->conns[0]->closed; }));
    EXPECT_TRUE(server->wait_until([&] { return server->io->sockets_in_use() == 0; }));
    EXPECT_EQ(server->on_loop([&] { return server->io->connection_count(); }), 0u);
    EXPECT_EQ(server->on_loop([&] { return server->io->queued_bytes(); }), 0u);
  }
  for (int i = 0; i < 20; ++i) {
    Client c(server->port);
    ASSERT_TRUE(c.connected);
    const std::string msg = "echo " + std::to_string(i);
    ASSERT_TRUE(c.send_all(msg));
    EXPECT_EQ(c.read(msg.size()), msg);
  }
}

// After our last bytes, the socket is shut for writing and its input read
// and dropped until the peer closes: a peer still sending gets those bytes
// and a clean end, not a reset.
TEST_P(IoServerTest, lingering_close_delivers_the_last_bytes_to_a_peer_still_sending) {
  auto server = make();
  server->on_accept = [&](Conn& conn) {
    conn.on_bytes = [](Socket& s, std::string_view) {
      if (s.closing()) return;
      ASSERT_TRUE(s.write("last words", 10));
      s.close_after_flush();
    };
  };
  server->start();
  Client c(server->port);
  ASSERT_TRUE(c.connected);
  std::atomic<bool> sending{true};
  std::thread writer([&] {
    const std::string chunk(16384, 'z');
    const auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until && c.send_all(chunk)) {
    }
    ::shutdown(c.fd, SHUT_WR);
    sending = false;
  });
  std::string got = c.read(10, 5s);
  std::string rest = c.read(1, 5s);  // then the end
  writer.join();
  EXPECT_EQ(got, "last words");
  EXPECT_TRUE(rest.empty());
  EXPECT_TRUE(c.eof);
  EXPECT_EQ(c.error, 0);  // not ECONNRESET
  EXPECT_TRUE(server->wait_until([&] { return server->io->sockets_in_use() == 0; }));
}

TEST_P(IoServerTest, linger_ends_at_its_deadline_for_a_peer_that_never_closes) {
  IoOptions o;
  o.linger_timeout = 100ms;
  auto server = make(o);
  server->on_accept = [&](Conn& conn) {
    conn.on_bytes = [](Socket& s, std::string_view) {
      s.write("bye", 3);
      s.close_after_flush();
    };
  };
  server->start();
  Client c(server->port);
  ASSERT_TRUE(c.send_all("hi"));
  EXPECT_EQ(c.read(3), "bye");
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_TRUE(server->wait_until([&] { return server->io->sockets_in_use() == 0; }));
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  c.read(1, 2s);
  EXPECT_TRUE(c.eof || c.error != 0);
}

// Out of descriptors, the pending connection would make every accept fail
// again: the server spends its reserve descriptor to accept and close it
// (on io_uring, the multishot accept's completion says EMFILE), and serves
// again once descriptors are free. The limit is lowered before the loop
// runs: the kernel takes a multishot accept's limit when it is armed.
TEST_P(IoServerTest, out_of_descriptors_sheds_connections_and_recovers) {
  {
    // One connection served first, by a server of its own: UBSan's vptr
    // check, on its first sight of a type, makes a pipe to probe the
    // object's memory, and reports a bad vptr when the process has no
    // descriptor left for it. Served once, the types are in its cache.
    auto warm = make();
    warm->on_accept = [&](Conn& conn) {
      conn.on_bytes = [](Socket& s, std::string_view bytes) { s.write(bytes.data(), bytes.size()); };
    };
    warm->start();
    Client c(warm->port);
    ASSERT_TRUE(c.connected);
    ASSERT_TRUE(c.send_all("warm"));
    ASSERT_EQ(c.read(4), "warm");
    // And the promises of the questions asked below, at the limit.
    EXPECT_EQ(warm->on_loop([&] { return warm->io->accepts_refused(); }), 0u);
    // The shedding path logs a warning: its first one makes the logger's
    // objects too.
    log_warn("io_server_test: a warning before the limit, for UBSan's type cache ({}, {} connections)",
             std::strerror(EMFILE), size_t{0});
  }
  auto server = make();
  server->on_accept = [&](Conn& conn) {
    conn.on_bytes = [](Socket& s, std::string_view bytes) { s.write(bytes.data(), bytes.size()); };
  };
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  // The clients' sockets are made before the limit tightens: in this one
  // process they would otherwise race the server for the last descriptors
  // (and a client that cannot make its socket ends the test's supply of
  // connections before the server ever runs out).
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 24; ++i) {
    clients.push_back(std::make_unique<Client>());
    ASSERT_GE(clients.back()->fd, 0);
  }
  size_t open_now = 0;
  for (int fd = 0; fd < 65536; ++fd) open_now += ::fcntl(fd, F_GETFD) >= 0 ? 1u : 0u;
  struct Restore {
    rlimit limit;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{old};
  rlimit tight = old;
  tight.rlim_cur = open_now + 12;  // the loop's own descriptors, and fewer accepted sockets than clients
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  server->start();
  for (auto& c : clients) {
    c->connect(server->port);
    ASSERT_TRUE(c->connected) << std::strerror(errno);
  }
  std::this_thread::sleep_for(200ms);
  const size_t accepted = server->on_loop([&] { return server->io->connection_count(); });
  EXPECT_LT(accepted, clients.size()) << "the limit left room for every connection";
  // Refused once per connection shed, not once per turn while at the limit.
  const uint64_t refused = server->on_loop([&] { return server->io->accepts_refused(); });
  EXPECT_GE(refused, 1u);
  EXPECT_LE(refused, clients.size());
  ::setrlimit(RLIMIT_NOFILE, &old);
  clients.clear();
  EXPECT_TRUE(server->wait_until([&] { return server->io->connection_count() == 0; }));
  Client c(server->port);
  ASSERT_TRUE(c.connected);
  ASSERT_TRUE(c.send_all("after"));
  EXPECT_EQ(c.read(5), "after");
}

// Set once on the listener, inherited by every socket it accepts.
TEST_P(IoServerTest, accepted_sockets_have_nodelay) {
  auto server = make();
  server->start();
  Client c(server->port);
  ASSERT_TRUE(c.send_all("x"));
  ASSERT_TRUE(server->wait_until([&] { return !server->conns.empty() && !server->conns[0]->got.empty(); }));
  EXPECT_EQ(server->on_loop([&] {
              int v = 0;
              socklen_t len = sizeof v;
              ::getsockopt(server->conns[0]->socket->fd(), IPPROTO_TCP, TCP_NODELAY, &v, &len);
              return v;
            }),
            1);
}

// Torn down with connections open, sends stuck in the kernel and input
// unread, after the loop's thread has ended (as App does for every loop but
// the first): nothing leaks, nothing is touched after it is freed (ASan),
// every handler hears the close, and the clients see the end once the loop
// is gone too (on io_uring the ring holds the sockets until then: the
// thread that could cancel its operations has ended).
TEST_P(IoServerTest, teardown_with_operations_in_the_kernel) {
  auto server = make();
  const std::string big = pattern(4u << 20, 9);
  server->on_accept = [&](Conn& conn) {
    conn.on_bytes = [&](Socket& s, std::string_view) { s.write(big.data(), big.size()); };
  };
  server->start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(server->port, 4096));
    ASSERT_TRUE(clients.back()->send_all("go"));
  }
  ASSERT_TRUE(server->wait_until([&] { return server->conns.size() == 8 && server->io->queued_bytes() > 0; }));
  server->stop();
  server->io.reset();
  for (auto& conn : server->conns) EXPECT_TRUE(conn->closed);
  server.reset();
  for (auto& c : clients) {
    c->read(64u << 20, 5s);
    EXPECT_TRUE(c->eof || c->error != 0);
  }
}

// ---------------------------------------------------------------- io_uring's registered files

namespace {

// The sockets in a ring's registered-file table, by index, from the
// kernel's own account of the ring (/proc/self/fdinfo of its descriptor:
// "UserFiles:" then one "index: socket:[inode]" line per registered file).
// Read on the loop's thread, between its calls of io_uring_enter, when the
// kernel can take the ring's lock to list them. nullopt: this kernel says
// nothing of its table.
std::optional<std::vector<unsigned>> registered_sockets(Server& server) {
  return server.on_loop([&]() -> std::optional<std::vector<unsigned>> {
    const int ring = uring_of(server.loop)->ring_fd();
    std::FILE* f = std::fopen(("/proc/self/fdinfo/" + std::to_string(ring)).c_str(), "r");
    if (f == nullptr) return std::nullopt;
    std::vector<unsigned> slots;
    bool in_files = false, seen = false;
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      unsigned index = 0;
      char what[16] = {};
      if (std::strncmp(line, "UserFiles:", 10) == 0) {
        in_files = seen = true;
      } else if (in_files && std::sscanf(line, " %u: %15[^:[]", &index, what) == 2) {
        if (std::strcmp(what, "socket") == 0) slots.push_back(index);
      } else {
        in_files = false;
      }
    }
    std::fclose(f);
    if (!seen) return std::nullopt;
    return slots;
  });
}

class RegisteredFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Loop::io_uring_unavailable().empty()) GTEST_SKIP() << Loop::io_uring_unavailable();
  }
};

std::vector<unsigned> server_fds(Server& server) {
  return server.on_loop([&] {
    std::vector<unsigned> fds;
    for (auto& c : server.conns) {
      if (c->socket != nullptr) fds.push_back(static_cast<unsigned>(c->socket->fd()));
    }
    std::sort(fds.begin(), fds.end());
    return fds;
  });
}

void echo_on_accept(Server& server) {
  server.on_accept = [](Conn& conn) {
    conn.on_bytes = [](Socket& s, std::string_view bytes) { ASSERT_TRUE(s.write(bytes.data(), bytes.size())); };
  };
}

}  // namespace

// Each accepted socket sits in the ring's table at its own number while it
// is open, and leaves it when it closes, whichever side closes: a
// registered file holds its socket open, so a slot left behind would keep
// the peer waiting for an end that never comes. The numbers come back
// with new connections, which work.
TEST_F(RegisteredFiles, sockets_are_registered_while_open_and_released_at_close) {
  IoOptions o;
  o.sweep_interval = 20ms;
  Server server(IoBackend::io_uring, o);
  echo_on_accept(server);
  server.start();
  ASSERT_GT(server.on_loop([&] { return uring_of(server.loop)->registered_file_slots(); }), 0u);
  if (!registered_sockets(server)) GTEST_SKIP() << "this kernel's fdinfo lists no registered files";

  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(std::make_unique<Client>(server.port));
      ASSERT_TRUE(clients.back()->send_all("hello"));
      EXPECT_EQ(clients.back()->read(5), "hello");
    }
    const std::vector<unsigned> open = server_fds(server);
    ASSERT_EQ(open.size(), 4u);
    std::vector<unsigned> listed = *registered_sockets(server);
    std::sort(listed.begin(), listed.end());
    EXPECT_EQ(listed, open) << "round " << round;

    // The server closes two: their peers see the end at once.
    server.on_loop([&] {
      int n = 0;
      for (auto& c : server.conns) {
        if (c->socket != nullptr && n++ < 2) c->socket->abort(0);
      }
    });
    for (int i = 0; i < 2; ++i) {
      clients[static_cast<size_t>(i)]->read(1, 2s);
      EXPECT_TRUE(clients[static_cast<size_t>(i)]->eof || clients[static_cast<size_t>(i)]->error != 0)
          << "round " << round << ": a socket closed by the server stayed open";
    }
    // The peers close the other two.
    clients.clear();
    ASSERT_TRUE(server.wait_until([&] { return server.io->sockets_in_use() == 0; }));
    // The closes' updates went in with the next turn's enter, before this call ran.
    EXPECT_EQ(registered_sockets(server)->size(), 0u) << "round " << round;
  }
}

// A number past the table (more descriptors open than it has slots) is
// used unregistered, and works the same; so does a server that turns
// registered files off.
TEST_F(RegisteredFiles, sockets_past_the_table_or_with_it_off_work_unregistered) {
  // Room above the table (sized by the open-file limit when the server is made).
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  struct Restore {
    rlimit limit;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{old};
  rlimit roomy = old;
  roomy.rlim_cur = std::max<rlim_t>(old.rlim_cur, std::min<rlim_t>(old.rlim_max, 4096));
  ::setrlimit(RLIMIT_NOFILE, &roomy);
  for (bool off : {false, true}) {
    IoOptions o;
    o.sweep_interval = 20ms;
    o.max_connections = 16;  // a table of 16 + 2,048 slots
    o.registered_files = !off;
    Server server(IoBackend::io_uring, o);
    echo_on_accept(server);
    server.start();
    const unsigned slots = server.on_loop([&] { return uring_of(server.loop)->registered_file_slots(); });
    if (off) {
      EXPECT_EQ(slots, 0u);
    } else {
      ASSERT_GT(slots, 0u);
    }
    if (!registered_sockets(server)) GTEST_SKIP() << "this kernel's fdinfo lists no registered files";
    // Fill the numbers below the table's end, so what is accepted next is past it.
    struct Fillers {
      std::vector<int> fds;
      ~Fillers() {
        for (int fd : fds) ::close(fd);
      }
    } fillers;
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (!off) {
      if (rl.rlim_cur < slots + 64u) GTEST_SKIP() << "an open-file limit below the table's " << slots << " slots";
      for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) {
        fillers.fds.push_back(fd);
        if (static_cast<unsigned>(fd) >= slots) break;
      }
    }
    {
      Client c(server.port);
      ASSERT_TRUE(c.connected);
      const std::string msg = pattern(200'000, 3);
      std::thread w([&] { c.send_all(msg); });
      EXPECT_EQ(c.read(msg.size(), 10s), msg);
      w.join();
      const std::vector<unsigned> open = server_fds(server);
      ASSERT_EQ(open.size(), 1u);
      if (!off) {
        EXPECT_GE(open[0], slots);
      }
      EXPECT_EQ(registered_sockets(server)->size(), 0u);
      server.on_loop([&] { server.conns[0]->socket->abort(0); });
      c.read(1, 2s);
      EXPECT_TRUE(c.eof || c.error != 0);
    }
    EXPECT_TRUE(server.wait_until([&] { return server.io->sockets_in_use() == 0; }));
  }
}

// ---------------------------------------------------------------- io_uring's receive ring

namespace {

// A ring of two small buffers, shared by many sockets sending at once: the
// kernel ends receives with ENOBUFS, the sockets are re-armed, and every
// byte still arrives, in order, once.
class TinyReceiveRing : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!Loop::io_uring_unavailable().empty()) GTEST_SKIP() << Loop::io_uring_unavailable();
  }
};

INSTANTIATE_TEST_SUITE_P(Consumption, TinyReceiveRing, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "incremental" : "whole_buffers"; });

}  // namespace

TEST_P(TinyReceiveRing, runs_dry_without_losing_a_byte) {
  IoOptions o;
  o.receive_buffers.count = 2;
  o.receive_buffers.size = 4096;
  o.receive_buffers.incremental = GetParam();
  Server server(IoBackend::io_uring, o);
  server.on_accept = [](Conn& conn) {
    conn.on_bytes = [](Socket& s, std::string_view bytes) { ASSERT_TRUE(s.write(bytes.data(), bytes.size())); };
  };
  server.start();
  constexpr int kClients = 12;
  constexpr size_t kBytes = 300'000;
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client c(server.port);
      const std::string data = pattern(kBytes, 100u + static_cast<unsigned>(i));
      std::thread w([&] { c.send_all(data); });
      const std::string back = c.read(kBytes, 20s);
      w.join();
      if (back == data) good.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), kClients);
  EXPECT_GT(server.on_loop([&] { return server.io->receive_rearms(); }), 0u);
  const bool incremental = server.on_loop([&] { return uring_of(server.loop)->receive_buffers_if_made()->incremental(); });
  if (!GetParam()) {
    EXPECT_FALSE(incremental);
  }
  if (GetParam() && !incremental) std::printf("[ note     ] this kernel has no incremental buffer consumption (6.12)\n");
}

}  // namespace windlass::detail
