// OutQueue against a real socket: whatever mix of copied, owned and shared
// pieces is queued, and however little the kernel takes per write, the
// peer must read exactly the queued bytes in order, and size() must always
// be what is still unwritten.
#include "io/out_queue.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <string>

namespace windlass::detail {
namespace {

struct SocketPair {
  int writer = -1;
  int reader = -1;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return;
    writer = fds[0];
    reader = fds[1];
    const int small = 4096;  // the kernel takes little per write: partial writes happen
    ::setsockopt(writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::fcntl(writer, F_SETFL, ::fcntl(writer, F_GETFL) | O_NONBLOCK);
    ::fcntl(reader, F_SETFL, ::fcntl(reader, F_GETFL) | O_NONBLOCK);
  }
  ~SocketPair() {
    ::close(writer);
    ::close(reader);
  }
  std::string read_some() const {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(reader, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

// Letters from one draw of `rng` and a linear congruential step per byte:
// the state stays in a register, so the tests' megabytes of payload stay
// cheap under TSan (mt19937 per byte took over a minute there).
std::string pattern(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  uint32_t x = static_cast<uint32_t>(rng());
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>('a' + (x >> 24) % 26);
  }
  return s;
}

TEST(OutQueue, delivers_every_mix_of_pieces_in_order_through_partial_writes) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    SocketPair pair;
    ASSERT_GE(pair.writer, 0);
    BufferPool pool;
    OutQueue q;
    std::string expected;
    std::string received;
    size_t unwritten = 0;
    for (int step = 0; step < 400; ++step) {
      switch (rng() % 7) {
        case 0:
        case 1: {  // a small frame, copied: the flat shape's case
          std::string s = pattern(rng, 1 + rng() % 40);
          q.append(pool, s.data(), s.size());
          expected += s;
          unwritten += s.size();
          break;
        }
        case 2: {  // a large copy: may pass kCoalesceLimit and turn the queue into chunks
          std::string s = pattern(rng, rng() % 70000);
          q.append(pool, s.data(), s.size());
          expected += s;
          unwritten += s.size();
          break;
        }
        case 3: {  // a broadcast: header copied, payload shared
          std::string header = pattern(rng, 2 + rng() % 8);
          auto payload = std::make_shared<const std::string>(pattern(rng, rng() % 3000));
          q.append_shared(pool, header.data(), header.size(), payload);
          expected += header + *payload;
          unwritten += header.size() + payload->size();
          break;
        }
        case 4: {  // a buffer handed over whole (TLS ciphertext)
          std::string s = pattern(rng, rng() % 500);
          expected += s;
          unwritten += s.size();
          q.append_owned(std::move(s));
          break;
        }
        case 5: {  // a frame: header and payload in one call
          std::string header = pattern(rng, 2 + rng() % 12);
          std::string payload = pattern(rng, rng() % (rng() % 2 ? 100 : 70000));
          q.append(pool, header.data(), header.size(), payload.data(), payload.size());
          expected += header + payload;
          unwritten += header.size() + payload.size();
          break;
        }
        default: {
          ssize_t n = q.write_to(pair.writer, pool);
          ASSERT_GE(n, 0);
          unwritten -= static_cast<size_t>(n);
          received += pair.read_some();
          break;
        }
      }
      ASSERT_EQ(q.size(), unwritten) << "seed " << seed << " step " << step;
    }
    while (!q.empty()) {
      ssize_t n = q.write_to(pair.writer, pool);
      ASSERT_GE(n, 0);
      received += pair.read_some();
    }
    received += pair.read_some();
    ASSERT_EQ(received.size(), expected.size()) << "seed " << seed;
    ASSERT_TRUE(received == expected) << "seed " << seed;
    q.clear(pool);
  }
}

TEST(OutQueue, drain_hands_over_the_unwritten_bytes_in_order) {
  std::mt19937 rng(3);
  SocketPair pair;
  BufferPool pool;
  OutQueue q;
  std::string expected = pattern(rng, 200000);  // more than the socket takes at once
  q.append(pool, expected.data(), expected.size());
  ssize_t first = q.write_to(pair.writer, pool);
  ASSERT_GT(first, 0);
  ASSERT_LT(static_cast<size_t>(first), expected.size());
  auto shared = std::make_shared<const std::string>(pattern(rng, 100));
  q.append_shared(pool, "hd", 2, shared);
  expected += "hd" + *shared;
  std::string rest;
  q.drain(pool, [&](const char* d, size_t n) { rest.append(d, n); });
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(rest == expected.substr(static_cast<size_t>(first)));
}

TEST(OutQueue, an_empty_queue_gives_its_buffer_back_to_the_pool) {
  SocketPair pair;
  BufferPool pool;
  OutQueue q;
  const std::string frame(100, 'x');
  q.append(pool, frame.data(), frame.size());
  EXPECT_EQ(pool.size(), 0u);
  ASSERT_EQ(q.write_to(pair.writer, pool), 100);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(pool.size(), 1u);  // an idle connection holds no buffer
  q.append(pool, frame.data(), frame.size());
  EXPECT_EQ(pool.size(), 0u);  // and the next frame reuses it
  q.clear(pool);
  EXPECT_EQ(pool.size(), 1u);
}

// io_uring: the kernel reads a send's bytes after start_send() returns. They
// must stay where the iovecs point, whatever is queued meanwhile, and a
// partial completion must leave the rest first in line.
TEST(OutQueue, bytes_in_flight_stay_put_while_more_is_queued) {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    BufferPool pool;
    OutQueue q;
    std::string expected, sent;
    auto queue_some = [&] {
      for (int k = static_cast<int>(rng() % 6); k >= 0; --k) {
        switch (rng() % 4) {
          case 0: {
            std::string p = pattern(rng, 1 + rng() % 40);  // short: would live inside the string
            q.append(pool, p.data(), p.size());
            expected += p;
            break;
          }
          case 1: {
            std::string p = pattern(rng, 1 + rng() % 70000);
            q.append(pool, p.data(), p.size());
            expected += p;
            break;
          }
          case 2: {
            auto shared = std::make_shared<const std::string>(pattern(rng, 1 + rng() % 3000));
            q.append_shared(pool, "hd", 2, shared);
            expected += "hd" + *shared;
            break;
          }
          default: {
            std::string p = pattern(rng, 1 + rng() % 500);
            expected += p;
            q.append_owned(std::move(p));
            break;
          }
        }
      }
    };
    queue_some();
    for (int round = 0; round < 200 && !q.empty(); ++round) {
      iovec iov[16];
      const int n = q.start_send(iov, 16);
      ASSERT_GT(n, 0);
      // What the kernel would read, taken now ...
      std::string snapshot;
      for (int i = 0; i < n; ++i) snapshot.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      ASSERT_EQ(snapshot.size(), q.in_flight());
      queue_some();  // ... queuing more must not move or change it
      std::string later;
      for (int i = 0; i < n; ++i) later.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      ASSERT_TRUE(later == snapshot) << "seed " << seed << " round " << round;
      const size_t took = rng() % 3 == 0 ? snapshot.size() : rng() % (snapshot.size() + 1);
      sent += snapshot.substr(0, took);
      const size_t before = q.size();
      q.finish_send(pool, took);
      ASSERT_EQ(q.size(), before - took);
      ASSERT_EQ(q.in_flight(), 0u);
    }
    while (!q.empty()) {
      iovec iov[16];
      const int n = q.start_send(iov, 16);
      size_t took = 0;
      for (int i = 0; i < n; ++i) {
        sent.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        took += iov[i].iov_len;
      }
      q.finish_send(pool, took);
    }
    ASSERT_TRUE(sent == expected) << "seed " << seed;
  }
}

}  // namespace
}  // namespace windlass::detail
