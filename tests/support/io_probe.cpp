// windlass-io-probe: whether this process may use io_uring (exit 0) or why
// not (exit 1, the probe's answer on stdout). The test harnesses ask it
// before the io_uring.* copies of the tests run, and skip them (exit 77)
// where io_uring cannot be used (an old kernel, io_uring_disabled, a
// container's seccomp filter).
#include <cstdio>

#include "windlass/loop.hpp"

int main() {
  const std::string& why = windlass::Loop::io_uring_unavailable();
  if (why.empty()) {
    std::puts("io_uring: available");
    return 0;
  }
  std::printf("io_uring: unavailable: %s\n", why.c_str());
  return 1;
}
