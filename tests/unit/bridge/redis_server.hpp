// A real redis-server (Debian's redis-server 7.0) for a test: started on a
// free loopback port of its own, in a temp dir, without persistence, and
// killed when the object goes, also when the test fails. A 3-master
// Cluster is three of them and `redis-cli --cluster create`.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace windlass::test {

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool port_open(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline bool have_program(const char* name) {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/usr/sbin/"}) {
    if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

inline int run(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class RedisServer {
 public:
  explicit RedisServer(bool cluster_node = false) : cluster_node_(cluster_node) {
    char tmpl[] = "/tmp/windlass-redis-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    start();
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void start() {
    // A cluster node also listens on its bus port, port + 10000: a port
    // above 55535 leaves it none and redis-server exits.
    while (port_ == 0 || (cluster_node_ && port_ > 65535 - 10000)) port_ = free_port();
    std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", dir_, "--daemonize", "no",
                                     "--logfile", dir_ + "/redis.log"};
    if (cluster_node_) {
      argv.insert(argv.end(), {"--cluster-enabled", "yes", "--cluster-config-file", dir_ + "/nodes.conf",
                               "--cluster-node-timeout", "2000"});
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Killed with the test even if it dies without running destructors.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execvp("redis-server", args.data());
      ::_exit(127);
    }
    for (int i = 0; i < 100 && !port_open(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!port_open(port_)) throw std::runtime_error("redis-server did not listen on " + std::to_string(port_));
  }
  // SIGKILL: Redis gone at once, as in an outage.
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
  }
  uint16_t port() const { return port_; }
  // SIGSTOP / SIGCONT: a Redis that keeps its connections but answers nothing.
  void freeze(bool frozen) const {
    if (pid_ > 0) ::kill(pid_, frozen ? SIGSTOP : SIGCONT);
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  int cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"redis-cli", "-p", std::to_string(port_)});
    return run(args);
  }
  // redis-cli's output for a command (arguments without spaces).
  std::string cli_output(const std::string& command) const {
    std::string cmd = "redis-cli -p " + std::to_string(port_) + " " + command + " 2>&1";
    std::string out;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
      ::pclose(f);
    }
    return out;
  }

 private:
  bool cluster_node_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = 0;
};

// Three masters, no replicas, all slots assigned.
class RedisCluster {
 public:
  RedisCluster() {
    for (int i = 0; i < 3; ++i) nodes_.push_back(std::make_unique<RedisServer>(true));
    std::vector<std::string> argv = {"redis-cli", "--cluster", "create"};
    for (auto& n : nodes_) argv.push_back("127.0.0.1:" + std::to_string(n->port()));
    argv.insert(argv.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    if (run(argv) != 0) throw std::runtime_error("redis-cli --cluster create failed");
    // Until every node says the cluster is up.
    for (int i = 0; i < 200; ++i) {
      bool ok = true;
      for (auto& n : nodes_) ok = ok && n->cli_output("cluster info").find("cluster_state:ok") != std::string::npos;
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("the Redis Cluster did not come up");
  }
  std::string url() const {
    std::string u = "redis-cluster://";
    for (size_t i = 0; i < nodes_.size(); ++i) u += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(nodes_[i]->port());
    return u;
  }
  RedisServer& node(size_t i) { return *nodes_[i]; }

 private:
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace windlass::test

// In a gtest body: skips the test where Debian's redis-server is not installed.
#define REQUIRE_REDIS()                                                                                      \
  if (!windlass::test::have_program("redis-server") || !windlass::test::have_program("redis-cli")) {       \
    GTEST_SKIP() << "redis-server or redis-cli not installed (scripts/install-deps.sh --with-test)";        \
  }
