#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "modes.hpp"

namespace windlass::load {

size_t open_all(ClientLoop& loop, const Options& opts, size_t first_n) {
  const size_t n = std::min(first_n, loop.size());
  const uint64_t started = monotonic_ns();
  for (size_t i = 0; i < n; ++i) loop.connect(loop.client(i));
  uint64_t next_progress = started + 1'000'000'000;
  for (;;) {
    loop.poll(50);
    const size_t open = loop.count(ClientState::open);
    const size_t idle = loop.count(ClientState::idle);
    if (loop.aborted() || open + idle == loop.size()) break;
    if (monotonic_ns() > next_progress) {
      progress(opts, "%zu/%zu connections open", open, n);
      next_progress += 1'000'000'000;
    }
  }
  const size_t open = loop.count(ClientState::open);
  progress(opts, "%zu/%zu connections open in %.2f s", open, n,
           static_cast<double>(monotonic_ns() - started) / 1e9);
  return open;
}

void progress(const Options& opts, const char* format, ...) {
  if (opts.quiet) return;
  std::fputs("windlass-load: ", stderr);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

}  // namespace windlass::load
