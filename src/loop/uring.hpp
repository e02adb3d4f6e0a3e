// The io_uring backend, and what the I/O layer needs of it.
//
// A turn is one io_uring_enter: it submits every operation the last turn
// queued (socket receive re-arms, sends, closes, cancels, polls of
// foreign descriptors, the mailbox's read) and waits, bounded by the next
// timer, for at least one completion. The ring is made with
// IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them
// (6.1): completions are then worked out only inside that one call, in a
// batch, instead of interrupting the thread as they happen.
//
// Foreign descriptors (Loop::add_fd: the HTTP client's sockets, the
// signalfd) get a one-shot IORING_OP_POLL_ADD, re-armed after each call of
// their handler: a one-shot poll completes at once when the descriptor is
// still ready, so a handler that reads only part of what waits is called
// again next turn, as level-triggered epoll would. (A multishot poll is
// edge-triggered, and the kernel refuses multishot with
// IORING_POLL_ADD_LEVEL.)
//
// Every completion names what it is for in its user_data: an object
// pointer with the operation in the low three bits (UringOp). The I/O
// layer registers a function per operation it uses (receive, send,
// accept); this file knows no socket.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "loop/backend.hpp"

namespace windlass::detail {

enum class UringOp : uint8_t {
  none = 0,     // user_data 0: a cancel's, close's or poll update's own result
  watch = 1,    // the poll of a descriptor given to Loop::add_fd
  mailbox = 2,  // the read (or poll) of the mailbox's eventfd
  recv = 3,     // IoServer: a socket's multishot receive
  send = 4,     // IoServer: a socket's send or sendmsg
  accept = 5,   // IoServer: a listener's multishot accept
};
inline constexpr unsigned kUringOps = 8;

// The receive buffers of one loop: a provided-buffer ring the kernel picks
// from for every multishot receive, so an idle connection holds no buffer
// (the io_uring form of the shared 512 KiB receive buffer of epoll).
//
// Where the kernel can (6.12, IOU_PBUF_RING_INC), the buffers are few and
// large and consumed incrementally: each receive takes only the bytes it
// fills, so a 20-byte message uses 20 bytes of a buffer, not a buffer, and
// thousands of small receives of one turn fit in a few buffers. Elsewhere
// each receive takes a whole buffer, so there are more of them, smaller.
// Either way a buffer goes back to the ring right after the handler of its
// last receive returns, in the same turn. When a turn's receives use them
// all, the kernel ends those sockets' multishot receives with ENOBUFS; the
// socket layer re-arms them for the next turn, when the buffers are back,
// and the bytes wait in the kernel meanwhile (nothing is lost).
//
// Every buffer is followed by `kPadding` readable bytes of its own slot,
// which the padding promise of SocketHandler::on_data needs.
class ReceiveBuffers {
 public:
  static constexpr uint32_t kPadding = 64;
  struct Options {
    unsigned count = 0;       // a power of two; 0: 4 incremental or 256 whole buffers
    uint32_t size = 0;        // bytes per buffer slot, padding included; 0: 256 KiB or 8 KiB
    bool incremental = true;  // use incremental consumption when the kernel has it
  };

  ReceiveBuffers(io_uring& ring, uint16_t group, const Options& options);
  ~ReceiveBuffers();
  ReceiveBuffers(const ReceiveBuffers&) = delete;
  ReceiveBuffers& operator=(const ReceiveBuffers&) = delete;

  uint16_t group() const noexcept { return group_; }
  bool incremental() const noexcept { return incremental_; }
  unsigned count() const noexcept { return count_; }
  uint32_t usable() const noexcept { return usable_; }
  size_t bytes() const noexcept { return memory_bytes_; }

  // Where the `res` bytes of a receive completion with these flags are.
  uint8_t* take(uint32_t cqe_flags, int32_t res) noexcept;
  // After the handler: gives the completion's buffer back to the kernel,
  // unless (incremental) the kernel is still filling it.
  void release(uint32_t cqe_flags) noexcept;

 private:
  void give_back(uint16_t bid) noexcept;

  io_uring& ring_;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* memory_ = nullptr;
  size_t memory_bytes_ = 0;
  size_t ring_bytes_ = 0;
  unsigned count_ = 0;
  uint32_t stride_ = 0;
  uint32_t usable_ = 0;
  uint16_t group_ = 0;
  bool incremental_ = false;
  bool registered_ = false;
  std::vector<uint32_t> offset_;  // incremental: bytes of each buffer already handed out
};

class Uring final : public LoopBackend {
 public:
  using CompletionFn = void (*)(void* object, int32_t res, uint32_t flags);

  // Throws std::runtime_error naming the call that failed.
  Uring();
  ~Uring() override;

  IoBackend kind() const noexcept override { return IoBackend::io_uring; }
  void add_fd(int fd, uint32_t events, IoHandler* handler) override;
  void modify_fd(int fd, uint32_t events, IoHandler* handler) override;
  void remove_fd(int fd) override;
  void attach_mailbox(Mailbox& mailbox) override;
  void wait(int timeout_ms) override;
  void dispatch() override;
  void enter_thread() override;
  void leave_thread() override;

  // ---- for the I/O layer

  static uint64_t user_data(const void* object, UringOp op) noexcept {
    return reinterpret_cast<uintptr_t>(object) | static_cast<uint64_t>(op);
  }
  void set_handler(UringOp op, CompletionFn fn) noexcept { handlers_[static_cast<unsigned>(op)] = fn; }
  // A free submission entry, to be submitted by the next turn's enter (the
  // queue is submitted first when it is full). Never null.
  io_uring_sqe* sqe();
  // An entry that may not have been submitted yet: withdraw() makes it a
  // no-op if it has not (and says so), so what it names can go at once.
  struct Queued {
    io_uring_sqe* sqe = nullptr;
    uint64_t generation = 0;
  };
  Queued queued(io_uring_sqe* entry) const noexcept { return Queued{entry, generation_}; }
  bool withdraw(Queued& q) noexcept;
  // Teardown outside run(): submits, waits up to `timeout_ms` for
  // completions, and hands those of the I/O layer (receive, send, accept)
  // to their handlers now; the others wait for the next dispatch().
  void reap_io(int timeout_ms);
  // Whether this thread may submit: the ring is enabled (by the first
  // run()) and, for a single-issuer ring, this is the thread that runs it.
  bool can_submit() const noexcept;
  // Submits what is queued, when this thread may (the loop's, or before
  // the first run()); for teardown outside run(). Never throws.
  void submit_now() noexcept;
  // The loop's receive buffers, made with `options` on first use.
  ReceiveBuffers& receive_buffers(const ReceiveBuffers::Options& options);
  ReceiveBuffers* receive_buffers_if_made() noexcept { return buffers_.get(); }

  // Registered files: a sparse table indexed by descriptor number, so a
  // socket registered at its own number is named by that number with
  // IOSQE_FIXED_FILE and the kernel skips the descriptor lookup (fget and
  // its reference count) on every receive and send. Made by the first
  // call, with min(`slots`, the open-file limit, 2^20) slots (the kernel
  // keeps 8 bytes per slot); returns whether the table exists (a kernel
  // or filter that refuses it: no socket uses one, nothing else changes).
  bool use_registered_files(unsigned slots);
  // Queues putting `fd` in its slot; false when it has none (a number past
  // the table), and then nothing is queued. Entries queued after this one
  // may name `fd` as a registered file: the kernel runs the update when it
  // is submitted, in order.
  bool register_file(int fd);
  // Queues taking `fd` out of its slot. Queue it before the descriptor's
  // close: a registered file holds the socket open.
  void unregister_file(int fd);
  unsigned registered_file_slots() const noexcept { return file_slots_; }
  // The ring's descriptor (tests read its /proc fdinfo).
  int ring_fd() const noexcept { return ring_.ring_fd; }

  // Calls of io_uring_enter made by waits and by full submission queues
  // (tests and benchmarks: one per turn is the design).
  uint64_t enter_calls() const noexcept { return enter_calls_; }
  uint64_t turns() const noexcept { return turns_; }
  bool defers_task_work() const noexcept { return (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) != 0; }

 private:
  // A descriptor given to add_fd. Freed when neither the kernel (an armed
  // poll) nor a running handler can name it any more.
  struct Watch {
    IoHandler* handler;
    int fd;
    uint32_t events;
    uint64_t prepared_in = 0;     // the submission generation its poll was queued in
    io_uring_sqe* sqe = nullptr;  // that poll's entry, while it is not submitted yet
    bool armed = false;           // a poll is queued or in the kernel
    bool removed = false;
    bool dispatching = false;  // its handler is running
    bool failed = false;       // its poll failed (a closed descriptor): not re-armed until modified
  };

  void arm(Watch& w);
  void complete_watch(Watch* w, int32_t res);
  void arm_mailbox();
  void complete_mailbox(int32_t res);
  bool unsubmitted(const Watch& w) const noexcept {
    return w.armed && w.sqe != nullptr && w.prepared_in == generation_;
  }
  void submit_full_queue();

  io_uring ring_{};
  unsigned setup_flags_ = 0;
  unsigned cq_entries_ = 0;
  bool enabled_ = false;  // IORING_SETUP_R_DISABLED: enabled by the first run(), on its thread
  bool ring_fd_registered_ = false;
  bool closing_ = false;
  std::thread::id issuer_;
  uint64_t generation_ = 0;  // submissions so far: an entry queued in this one is not in the kernel yet
  uint64_t enter_calls_ = 0;
  uint64_t turns_ = 0;
  CompletionFn handlers_[kUringOps] = {};
  std::unordered_map<int, Watch*> watches_;
  // Removed while their poll is in the kernel: freed by the poll's last
  // completion, or by the destructor when the ring goes first.
  std::unordered_set<Watch*> removed_watches_;
  Mailbox* mailbox_ = nullptr;
  uint64_t mailbox_count_ = 0;
  bool mailbox_polls_ = false;  // a kernel whose read of a non-blocking eventfd says EAGAIN: poll it instead
  std::unique_ptr<ReceiveBuffers> buffers_;
  // The registered-file table's slots, and what each update reads (the
  // kernel copies the descriptor from here when it runs the update, after
  // the caller may be gone): fd_values_[fd] is fd. Made uninitialised, so
  // only the pages of numbers in use are ever touched.
  unsigned file_slots_ = 0;
  bool files_tried_ = false;
  std::unique_ptr<int[]> fd_values_;
  struct Done {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
  };
  void complete(const Done& d);
  std::vector<Done> held_;  // reaped by reap_io() for someone else
};

}  // namespace windlass::detail
