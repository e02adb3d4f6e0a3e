#include "loop/uring.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "log.hpp"
#include "loop/mailbox.hpp"

namespace windlass::detail {

namespace {

// Newer than liburing 2.3's headers (the kernel's uapi names).
constexpr uint16_t kPbufRingIncremental = 2;  // IOU_PBUF_RING_INC, 6.12
constexpr uint32_t kCqeBufMore = 1u << 4;     // IORING_CQE_F_BUF_MORE

// Ring sizes. A turn of a loop with 10,000 busy connections queues a send
// and maybe a receive re-arm for each: the submission queue is flushed
// early when it fills (one more enter per 2,048 entries), and the
// completion queue holds a whole turn's results with room to spare (the
// kernel keeps any overflow, IORING_FEAT_NODROP, but flushing it costs).
constexpr unsigned kSqEntries = 2048;
constexpr unsigned kCqEntries = 16384;

// The kernel's own bound on a registered-file table (IORING_MAX_FIXED_FILES).
constexpr unsigned kMaxFileSlots = 1u << 20;

// Best first: completions worked out only inside our io_uring_enter, in a
// batch, for a ring used by one thread (6.1); else completions run at the
// thread's next entry to the kernel, without an interrupt (5.19).
constexpr unsigned kSetupBest = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
constexpr unsigned kSetupOlder =
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;

// What add_fd's events may ask of a poll: epoll's bits are poll's bits;
// EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE and EPOLLWAKEUP mean nothing here.
constexpr uint32_t kPollable = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP |
                               EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG;

std::string errno_text(int err) {
  return std::strerror(err < 0 ? -err : err);
}

[[noreturn]] void fail(const char* what, int err) {
  throw std::runtime_error(std::string(what) + ": " + errno_text(err));
}

int init_ring(io_uring& ring, unsigned sq, unsigned cq, unsigned& flags_used, io_uring_params& params) {
  int r = -EINVAL;
  for (unsigned flags : {kSetupBest, kSetupOlder}) {
    params = io_uring_params{};
    params.flags = flags;
    params.cq_entries = cq;
    r = io_uring_queue_init_params(sq, &ring, &params);
    if (r == 0) {
      flags_used = flags;
      return 0;
    }
    if (r != -EINVAL) return r;  // refused outright: no point trying older flags
  }
  return r;
}

int read_sysctl(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  int v = -1;
  if (std::fscanf(f, "%d", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}

// What the probe needs that liburing 2.3 exports without wrapping.
int enable_ring(io_uring& ring) {
  return io_uring_register(static_cast<unsigned>(ring.ring_fd), IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
}

const char* opcode_name(int op) {
  switch (op) {
    case IORING_OP_ACCEPT: return "IORING_OP_ACCEPT";
    case IORING_OP_RECV: return "IORING_OP_RECV";
    case IORING_OP_SEND: return "IORING_OP_SEND";
    case IORING_OP_SENDMSG: return "IORING_OP_SENDMSG";
    case IORING_OP_POLL_ADD: return "IORING_OP_POLL_ADD";
    case IORING_OP_POLL_REMOVE: return "IORING_OP_POLL_REMOVE";
    case IORING_OP_ASYNC_CANCEL: return "IORING_OP_ASYNC_CANCEL";
    case IORING_OP_READ: return "IORING_OP_READ";
    case IORING_OP_CLOSE: return "IORING_OP_CLOSE";
    default: return "an opcode";
  }
}

// The probe: everything the backend relies on, tried for real once per
// process on a small ring, so `auto` can say exactly what is missing. A
// seccomp filter may refuse any of the three system calls; the kernel
// may lack a feature, an opcode or a flag (multishot receive is 6.0).
std::string probe_ring(io_uring& ring, const io_uring_params& params, unsigned flags, void*& mem) {
  if (!(params.features & IORING_FEAT_EXT_ARG)) return "no IORING_FEAT_EXT_ARG (a kernel older than 5.11)";
  if (!(params.features & IORING_FEAT_NODROP)) return "no IORING_FEAT_NODROP (a kernel older than 5.5)";
  if (!(params.features & IORING_FEAT_FAST_POLL)) return "no IORING_FEAT_FAST_POLL (a kernel older than 5.7)";
  if (!(params.features & IORING_FEAT_CQE_SKIP)) return "no IORING_FEAT_CQE_SKIP (a kernel older than 5.17)";
  int r;
  if ((flags & IORING_SETUP_R_DISABLED) && (r = enable_ring(ring)) < 0) {
    return "IORING_REGISTER_ENABLE_RINGS: " + errno_text(r);
  }

  io_uring_probe* ops = io_uring_get_probe_ring(&ring);
  if (ops == nullptr) return "IORING_REGISTER_PROBE refused (a seccomp filter, or a kernel older than 5.6)";
  std::string missing;
  for (int op : {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_POLL_ADD,
                 IORING_OP_POLL_REMOVE, IORING_OP_ASYNC_CANCEL, IORING_OP_READ, IORING_OP_CLOSE}) {
    if (!io_uring_opcode_supported(ops, op) && missing.empty()) missing = opcode_name(op);
  }
  io_uring_free_probe(ops);
  if (!missing.empty()) return "the kernel has no " + missing;

  // A provided-buffer ring (5.19) and a multishot receive into it (6.0),
  // over a socket pair: one byte written must arrive with "more to come".
  mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    mem = nullptr;
    return "mmap: " + errno_text(errno);
  }
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br);
  reg.ring_entries = 1;
  reg.bgid = 0;
  if ((r = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) {
    return "IORING_REGISTER_PBUF_RING: " + errno_text(r) + " (a kernel older than 5.19)";
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return "socketpair: " + errno_text(errno);
  auto* byte_buffer = static_cast<char*>(mem) + 2048;  // the page's second half
  io_uring_buf_ring_init(br);
  io_uring_buf_ring_add(br, byte_buffer, 64, 0, io_uring_buf_ring_mask(1), 0);
  io_uring_buf_ring_advance(br, 1);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  io_uring_sqe_set_data64(sqe, 1);
  [[maybe_unused]] ssize_t w = ::write(sv[1], "x", 1);
  __kernel_timespec ts{1, 0};
  io_uring_cqe* cqe = nullptr;
  r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
  std::string why;
  if (r < 0 && cqe == nullptr) {
    why = "io_uring_enter: " + errno_text(r) + (r == -EPERM || r == -ENOSYS ? " (a seccomp filter)" : "");
  } else if (cqe == nullptr) {
    why = "a multishot receive did not complete";
  } else if (cqe->res != 1 || !(cqe->flags & IORING_CQE_F_MORE)) {
    why = cqe->res < 0 ? "multishot receive: " + errno_text(cqe->res) + " (a kernel older than 6.0)"
                       : "multishot receive did not stay armed (a kernel older than 6.0)";
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return why;
}

std::string probe() {
  io_uring ring{};
  io_uring_params params{};
  unsigned flags = 0;
  int r = init_ring(ring, 8, 64, flags, params);
  if (r < 0) {
    std::string why = "io_uring_setup: " + errno_text(r);
    const int disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
    if (r == -EPERM) {
      why += disabled > 0 ? " (kernel.io_uring_disabled=" + std::to_string(disabled) + ")"
                          : " (a seccomp filter, or kernel.io_uring_disabled)";
    } else if (r == -ENOSYS) {
      why += " (a kernel built without io_uring, or a seccomp filter)";
    } else if (r == -EINVAL) {
      why += " (a kernel older than 5.19)";
    }
    return why;
  }
  void* mem = nullptr;
  std::string why = probe_ring(ring, params, flags, mem);
  io_uring_queue_exit(&ring);  // before the buffer ring's memory goes
  if (mem != nullptr) ::munmap(mem, 4096);
  return why;
}

}  // namespace

const std::string& uring_unavailable() {
  static const std::string why = probe();
  return why;
}

std::unique_ptr<LoopBackend> make_uring_backend(std::string& why) {
  why = uring_unavailable();
  if (!why.empty()) return nullptr;
  try {
    return std::make_unique<Uring>();
  } catch (const std::exception& e) {
    why = e.what();
    return nullptr;
  }
}

// ---------------------------------------------------------------- ReceiveBuffers

ReceiveBuffers::ReceiveBuffers(io_uring& ring, uint16_t group, const Options& o)
    : ring_(ring), group_(group) {
  for (bool inc : {o.incremental, false}) {
    // Incremental: 1 MiB in 4 buffers. A message that reaches a buffer's
    // end arrives in two receives (and is put together by a copy), so the
    // larger the buffer the fewer such: 1 in 16 of 16 KiB messages with
    // 256 KiB buffers, 1 in 4 with 64 KiB (bench/RESULTS.md, "Large
    // replies on io_uring").
    count_ = o.count != 0 ? o.count : (inc ? 4u : 256u);
    stride_ = o.size != 0 ? o.size : (inc ? 256u * 1024 : 8u * 1024);
    if ((count_ & (count_ - 1)) != 0 || count_ > 32768 || stride_ <= kPadding) {
      throw std::invalid_argument("io_uring receive buffers: a power of two up to 32768, each over 64 bytes");
    }
    ring_bytes_ = (count_ * sizeof(io_uring_buf) + 4095) / 4096 * 4096;
    void* mem = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) fail("mmap (io_uring buffer ring)", errno);
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(br_);
    reg.ring_entries = count_;
    reg.bgid = group_;
    reg.pad = inc ? kPbufRingIncremental : 0;  // the kernel's `flags` field, named `pad` by liburing 2.3
    const int r = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (r == 0) {
      incremental_ = inc;
      break;
    }
    ::munmap(br_, ring_bytes_);
    br_ = nullptr;
    if (!inc || r != -EINVAL) fail("IORING_REGISTER_PBUF_RING", r);
    // EINVAL with the incremental flag: a kernel before 6.12. Whole buffers then.
  }
  registered_ = true;
  usable_ = stride_ - kPadding;
  memory_bytes_ = size_t{count_} * stride_;
  // Touched now, as epoll's receive buffer is: a per-loop cost paid at
  // start, not spread over the first connections that happen to use it.
  void* mem = ::mmap(nullptr, memory_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) fail("mmap (io_uring receive buffers)", errno);
  memory_ = static_cast<uint8_t*>(mem);
  if (incremental_) offset_.assign(count_, 0);
  io_uring_buf_ring_init(br_);
  const int mask = io_uring_buf_ring_mask(count_);
  for (unsigned i = 0; i < count_; ++i) {
    io_uring_buf_ring_add(br_, memory_ + size_t{i} * stride_, usable_, static_cast<unsigned short>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count_));
}

ReceiveBuffers::~ReceiveBuffers() {
  // The ring is gone by now (Uring closes it first): nothing can write here.
  if (memory_ != nullptr) ::munmap(memory_, memory_bytes_);
  if (br_ != nullptr) ::munmap(br_, ring_bytes_);
}

uint8_t* ReceiveBuffers::take(uint32_t cqe_flags, int32_t res) noexcept {
  const auto bid = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
  uint8_t* base = memory_ + size_t{bid} * stride_;
  if (!incremental_) return base;
  uint8_t* p = base + offset_[bid];
  if (res > 0) offset_[bid] += static_cast<uint32_t>(res);
  return p;
}

void ReceiveBuffers::release(uint32_t cqe_flags) noexcept {
  if (!(cqe_flags & IORING_CQE_F_BUFFER)) return;
  const auto bid = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
  if (incremental_) {
    if (cqe_flags & kCqeBufMore) return;  // the kernel goes on filling it
    offset_[bid] = 0;
  }
  give_back(bid);
}

void ReceiveBuffers::give_back(uint16_t bid) noexcept {
  io_uring_buf_ring_add(br_, memory_ + size_t{bid} * stride_, usable_, bid, io_uring_buf_ring_mask(count_),
                        0);
  io_uring_buf_ring_advance(br_, 1);
}

// ---------------------------------------------------------------- Uring

Uring::Uring() {
  io_uring_params params{};
  const int r = init_ring(ring_, kSqEntries, kCqEntries, setup_flags_, params);
  if (r < 0) fail("io_uring_setup", r);
  cq_entries_ = params.cq_entries;
  if (!(setup_flags_ & IORING_SETUP_R_DISABLED)) enabled_ = true;
}

Uring::~Uring() {
  closing_ = true;
  if (can_submit()) {
    // Cancel what is still in the kernel and collect the results, so that
    // no operation outlives the memory it names (buffers, queued bytes).
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    if (s != nullptr) {
      io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(s, 0);
    }
    for (int round = 0; round < 64; ++round) {
      __kernel_timespec ts{0, round == 0 ? 10'000'000 : 1'000'000};
      io_uring_cqe* cqe = nullptr;
      const int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      const unsigned n = io_uring_cq_ready(&ring_);
      io_uring_cq_advance(&ring_, n);
      if (n == 0 && (r == -ETIME || r < 0)) break;
    }
  }
  if (ring_fd_registered_) io_uring_unregister_ring_fd(&ring_);
  io_uring_queue_exit(&ring_);
  buffers_.reset();  // after the ring: see ~ReceiveBuffers
  for (auto& [fd, w] : watches_) delete w;
  for (Watch* w : removed_watches_) delete w;
}

bool Uring::can_submit() const noexcept {
  if (!enabled_) return false;
  return !(setup_flags_ & IORING_SETUP_SINGLE_ISSUER) || issuer_ == std::this_thread::get_id();
}

void Uring::enter_thread() {
  const auto self = std::this_thread::get_id();
  if (setup_flags_ & IORING_SETUP_R_DISABLED) {
    if (!enabled_) {
      // The ring's one submitter is the thread that enables it.
      const int r = enable_ring(ring_);
      if (r < 0) fail("IORING_REGISTER_ENABLE_RINGS", r);
      enabled_ = true;
      issuer_ = self;
    } else if (issuer_ != self) {
      throw std::logic_error(
          "io_uring: a Loop runs on one thread for its whole life (run() called on a second thread)");
    }
  }
  // One fewer file lookup per io_uring_enter; a thread's own table.
  if (!ring_fd_registered_ && io_uring_register_ring_fd(&ring_) == 1) ring_fd_registered_ = true;
}

void Uring::leave_thread() {
  // The last turn's operations (closes, cancels) go to the kernel now,
  // not whenever the loop runs again.
  submit_now();
  if (ring_fd_registered_) {
    io_uring_unregister_ring_fd(&ring_);
    ring_fd_registered_ = false;
  }
}

void Uring::submit_now() noexcept {
  if (!can_submit() || io_uring_sq_ready(&ring_) == 0) return;
  ++generation_;
  ++enter_calls_;
  io_uring_submit(&ring_);
}

void Uring::submit_full_queue() {
  if (!can_submit()) throw std::runtime_error("io_uring: submission queue full outside the loop's thread");
  ++generation_;
  ++enter_calls_;
  const int r = io_uring_submit(&ring_);
  if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR) fail("io_uring_enter", r);
}

io_uring_sqe* Uring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s != nullptr) return s;
  submit_full_queue();
  s = io_uring_get_sqe(&ring_);
  if (s == nullptr) throw std::runtime_error("io_uring: no free submission entry");
  return s;
}

ReceiveBuffers& Uring::receive_buffers(const ReceiveBuffers::Options& options) {
  if (!buffers_) buffers_ = std::make_unique<ReceiveBuffers>(ring_, 0, options);
  return *buffers_;
}

// ---- registered files

bool Uring::use_registered_files(unsigned slots) {
  if (files_tried_) return file_slots_ != 0;
  files_tried_ = true;
  // The kernel refuses a table larger than the open-file limit.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < slots) {
    slots = static_cast<unsigned>(rl.rlim_cur);
  }
  slots = std::min(slots, kMaxFileSlots);
  if (slots == 0) return false;
  const int r = io_uring_register_files_sparse(&ring_, slots);
  if (r < 0) {
    log_debug("io_uring: no registered files ({} slots): {}", slots, errno_text(r));
    return false;
  }
  fd_values_.reset(new int[slots]);
  file_slots_ = slots;
  return true;
}

bool Uring::register_file(int fd) {
  if (fd < 0 || static_cast<unsigned>(fd) >= file_slots_) return false;
  fd_values_[static_cast<unsigned>(fd)] = fd;
  io_uring_sqe* s = sqe();
  io_uring_prep_files_update(s, &fd_values_[static_cast<unsigned>(fd)], 1, fd);
  io_uring_sqe_set_data64(s, 0);
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
  return true;
}

void Uring::unregister_file(int fd) {
  static int none = -1;  // the kernel reads it, never writes it
  io_uring_sqe* s = sqe();
  io_uring_prep_files_update(s, &none, 1, fd);
  io_uring_sqe_set_data64(s, 0);
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

// ---- the turn

void Uring::wait(int timeout_ms) {
  ++turns_;
  ++generation_;
  ++enter_calls_;
  int r;
  if (timeout_ms < 0) {
    r = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
    io_uring_cqe* cqe = nullptr;
    r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  // ETIME: the timer is due; EINTR: a signal (they come through the
  // signalfd, so rarely); EBUSY: completions to reap first.
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN) fail("io_uring_enter", r);
}

bool Uring::withdraw(Queued& q) noexcept {
  const bool pending = q.sqe != nullptr && q.generation == generation_;
  if (pending) {
    io_uring_prep_nop(q.sqe);
    io_uring_sqe_set_data64(q.sqe, 0);
    q.sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
  }
  q.sqe = nullptr;
  return pending;
}

void Uring::complete(const Done& d) {
  const auto op = static_cast<UringOp>(d.user_data & (kUringOps - 1));
  void* object = reinterpret_cast<void*>(static_cast<uintptr_t>(d.user_data & ~uint64_t{kUringOps - 1}));
  switch (op) {
    case UringOp::none: break;  // the result of a cancel, close or poll update nobody waits for
    case UringOp::watch: complete_watch(static_cast<Watch*>(object), d.res); break;
    case UringOp::mailbox: complete_mailbox(d.res); break;
    default:
      if (CompletionFn fn = handlers_[static_cast<unsigned>(op)]) fn(object, d.res, d.flags);
      break;
  }
}

void Uring::reap_io(int timeout_ms) {
  if (!can_submit()) return;
  ++generation_;
  ++enter_calls_;
  __kernel_timespec ts{};
  ts.tv_nsec = static_cast<long long>(timeout_ms) * 1'000'000;
  io_uring_cqe* cqe = nullptr;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  io_uring_cqe* cqes[64];
  unsigned n;
  while ((n = io_uring_peek_batch_cqe(&ring_, cqes, 64)) != 0) {
    Done done[64];
    for (unsigned i = 0; i < n; ++i) done[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      const auto op = static_cast<UringOp>(done[i].user_data & (kUringOps - 1));
      if (op == UringOp::recv || op == UringOp::send || op == UringOp::accept || op == UringOp::none) {
        complete(done[i]);
      } else {
        held_.push_back(done[i]);
      }
    }
  }
}

void Uring::dispatch() {
  if (!held_.empty()) {
    std::vector<Done> held;
    held.swap(held_);
    for (const Done& d : held) complete(d);
  }
  // Copied out and the queue head moved before any handler runs: a handler
  // may submit (a full queue), which may complete more at once.
  constexpr unsigned kBatch = 256;
  io_uring_cqe* cqes[kBatch];
  Done done[kBatch];
  // Bounded, so completions that handlers cause cannot hold the turn.
  for (unsigned total = 0; total < cq_entries_;) {
    const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) done[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) complete(done[i]);
    total += n;
  }
}

// ---- the mailbox

void Uring::attach_mailbox(Mailbox& mailbox) {
  mailbox_ = &mailbox;
  arm_mailbox();
}

void Uring::arm_mailbox() {
  io_uring_sqe* s = sqe();
  if (mailbox_polls_) {
    io_uring_prep_poll_add(s, mailbox_->fd(), POLLIN);
  } else {
    // The read resets the eventfd's counter in the kernel: a wake-up costs
    // the loop no system call of its own.
    io_uring_prep_read(s, mailbox_->fd(), &mailbox_count_, sizeof mailbox_count_, 0);
  }
  io_uring_sqe_set_data64(s, user_data(this, UringOp::mailbox));
}

void Uring::complete_mailbox(int32_t res) {
  if (closing_ || res == -ECANCELED) return;
  if (res == -EAGAIN && !mailbox_polls_) {
    mailbox_polls_ = true;  // this kernel does not wait on a non-blocking eventfd's read
  } else if (mailbox_polls_) {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(mailbox_->fd(), &count, sizeof count);
  }
  mailbox_->run();
  arm_mailbox();
}

// ---- foreign descriptors

void Uring::arm(Watch& w) {
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_add(s, w.fd, w.events & kPollable);
  io_uring_sqe_set_data64(s, user_data(&w, UringOp::watch));
  w.sqe = s;
  w.prepared_in = generation_;
  w.armed = true;
}

void Uring::add_fd(int fd, uint32_t events, IoHandler* handler) {
  if (watches_.contains(fd)) {
    throw std::runtime_error("io_uring poll of descriptor " + std::to_string(fd) + ": " + errno_text(EEXIST));
  }
  if (::fcntl(fd, F_GETFD) < 0) fail("io_uring poll", errno);
  auto w = std::make_unique<Watch>(Watch{handler, fd, events});
  arm(*w);
  watches_.emplace(fd, w.release());
}

void Uring::modify_fd(int fd, uint32_t events, IoHandler* handler) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) {
    throw std::runtime_error("io_uring poll update of descriptor " + std::to_string(fd) + ": " +
                             errno_text(ENOENT));
  }
  Watch& w = *it->second;
  const uint32_t old = w.events;
  w.handler = handler;
  w.events = events;
  w.failed = false;
  if (w.dispatching) return;  // re-armed with the new events when its handler returns
  if (!w.armed) {
    arm(w);
  } else if (old != events) {
    if (unsubmitted(w)) {
      io_uring_prep_poll_add(w.sqe, w.fd, events & kPollable);  // still ours: rewrite it
      io_uring_sqe_set_data64(w.sqe, user_data(&w, UringOp::watch));
    } else {
      // If the poll completes first, the update finds nothing (ENOENT,
      // ignored) and the re-arm after the handler uses the new events.
      io_uring_sqe* s = sqe();
      io_uring_prep_poll_update(s, user_data(&w, UringOp::watch), user_data(&w, UringOp::watch),
                                events & kPollable, IORING_POLL_UPDATE_EVENTS);
      io_uring_sqe_set_data64(s, 0);
      s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
  }
}

void Uring::remove_fd(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  Watch* w = it->second;
  watches_.erase(it);
  w->removed = true;
  if (w->dispatching) return;  // freed when its handler returns
  if (!w->armed) {
    delete w;
  } else if (unsubmitted(*w)) {
    // Never reached the kernel: made a no-op, so the caller may close the
    // descriptor (and its number be reused) before the next turn.
    io_uring_prep_nop(w->sqe);
    io_uring_sqe_set_data64(w->sqe, 0);
    w->sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
    delete w;
  } else {
    // The kernel's poll holds the file, not the number, so closing the
    // descriptor now is safe; the poll's own completion frees the watch.
    removed_watches_.insert(w);
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_remove(s, user_data(w, UringOp::watch));
    io_uring_sqe_set_data64(s, 0);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
  }
}

void Uring::complete_watch(Watch* w, int32_t res) {
  w->armed = false;
  w->sqe = nullptr;
  if (w->removed) {
    removed_watches_.erase(w);
    delete w;
    return;
  }
  uint32_t events = 0;
  if (res >= 0) {
    events = static_cast<uint32_t>(res);
  } else {
    // A descriptor closed behind the loop's back: told once, not re-armed
    // (it would fail again at once, every turn).
    w->failed = true;
    events = EPOLLERR | EPOLLHUP;
  }
  w->dispatching = true;
  w->handler->on_io(events);
  w->dispatching = false;
  if (w->removed) {
    delete w;
  } else if (!w->failed && !w->armed) {
    arm(*w);
  }
}

}  // namespace windlass::detail
