// windlass-load: a WebSocket load generator for benchmarking windlass and
// its peers. See `windlass-load --help` and bench/RESULTS.md.
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "client_loop.hpp"
#include "modes.hpp"
#include "options.hpp"
#include "report.hpp"

namespace {

using namespace windlass::load;

struct NamedMode {
  const char* name;
  ModeFunction run;
};

constexpr NamedMode kModes[] = {
    {"echo", run_echo},
    {"fanout", run_fanout},
    {"handshake", run_handshake},
    {"idle", run_idle},
    {"pusher", run_pusher},
    {"pusher-idle", run_pusher_idle},
};

// Descriptors the process needs besides its connections: stdio, epoll,
// getaddrinfo's and /proc's transient files.
constexpr size_t kSpareDescriptors = 16;

// Raises the soft RLIMIT_NOFILE to the hard limit and returns how many
// connections fit under it.
size_t connection_limit(size_t& hard_limit) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    std::fprintf(stderr, "windlass-load: getrlimit: %s\n", std::strerror(errno));
    hard_limit = 1024;
    return hard_limit - kSpareDescriptors;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      std::fprintf(stderr, "windlass-load: setrlimit: %s\n", std::strerror(errno));
      getrlimit(RLIMIT_NOFILE, &limit);
    }
  }
  hard_limit = static_cast<size_t>(limit.rlim_max);
  const auto usable = static_cast<size_t>(limit.rlim_cur);
  return usable > kSpareDescriptors ? usable - kSpareDescriptors : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  bool help = false;
  if (!parse_options(argc, argv, opts, help)) return help ? 0 : 2;

  ModeFunction run = nullptr;
  for (const NamedMode& m : kModes) {
    if (opts.mode == m.name) run = m.run;
  }
  if (run == nullptr) {
    std::fprintf(stderr, "windlass-load: unknown mode '%s' (echo, fanout, handshake, idle, pusher, pusher-idle)\n",
                 opts.mode.c_str());
    return 2;
  }

  Target target;
  std::string error;
  if (!resolve_target(opts, target, error)) {
    std::fprintf(stderr, "windlass-load: %s\n", error.c_str());
    return 2;
  }

  Report report;
  report.mode = opts.mode;
  report.requested_connections = opts.connections;
  const size_t limit = connection_limit(report.nofile_limit);
  report.connections = std::min(opts.connections, limit);
  if (report.connections < opts.connections) {
    progress(opts, "%zu connections capped at %zu by the RLIMIT_NOFILE hard limit (%zu)", opts.connections,
             report.connections, report.nofile_limit);
  }

  run(opts, target, report);
  print_report(report, opts);
  return report.ok() ? 0 : 1;
}
