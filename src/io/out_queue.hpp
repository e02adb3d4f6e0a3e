// A connection's write queue: bytes accepted by send() and not yet by the
// kernel. Small frames are appended into one owned buffer, so many sends in
// a loop turn leave with one write; large or shared payloads (a broadcast
// encoded once) are queued by reference, not copied. Owned buffers come
// from and go back to the loop's BufferPool: an empty queue holds no memory.
//
// Two shapes. The common one is "flat": only copied bytes are queued, all
// in `flat_`, and a flush is one write() of one range. The first shared
// payload (or a copy that would grow `flat_` past kCoalesceLimit) turns
// the queue into a list of chunks, written with writev, until it drains.
//
// With io_uring the kernel reads the bytes after the call that queues the
// send returns: start_send() hands it the queue's head and pins what holds
// those bytes until finish_send() (no append grows, moves or frees a
// buffer in flight; new bytes start a chunk of their own behind them).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/buffer_pool.hpp"

namespace windlass::detail {

class OutQueue {
 public:
  // Queues a buffer whole, without copying it (it returns to the pool when written).
  void append_owned(std::string&& bytes);
  // Copies `n` bytes to the end of the queue.
  void append(BufferPool& pool, const void* data, size_t n);
  // Copies `an` bytes, then `bn` bytes (a frame's header and payload).
  void append(BufferPool& pool, const void* a, size_t an, const void* b, size_t bn);
  // Queues a frame header (copied) and a shared payload (referenced).
  void append_shared(BufferPool& pool, const void* header, size_t header_len,
                     std::shared_ptr<const std::string> payload);

  size_t size() const noexcept { return bytes_; }
  bool empty() const noexcept { return bytes_ == 0; }

  // Writes as much as the socket takes with one writev. Returns the bytes
  // written, 0 when the socket is full, or -errno on a socket error.
  ssize_t write_to(int fd, BufferPool& pool);
  // io_uring: fills `iov` with up to `max` pieces of the queued bytes from
  // the head, and marks them in flight until finish_send(). Returns the
  // number of pieces (0 when empty). One send at a time.
  int start_send(iovec* iov, int max);
  // The send started last is done and the kernel took `n` of its bytes
  // (fewer when the socket's buffer filled): those leave the queue, the
  // rest is sent again next time, first.
  void finish_send(BufferPool& pool, size_t n);
  size_t in_flight() const noexcept { return in_flight_; }

  // Passes every queued byte, in order, to `sink(data, len)` and empties
  // the queue (TLS encrypts the plaintext queue into the wire queue).
  template <class Sink>
  void drain(BufferPool& pool, Sink&& sink) {
    if (flat_.size() > flat_offset_) sink(flat_.data() + flat_offset_, flat_.size() - flat_offset_);
    for (size_t i = head_; i < chunks_.size(); ++i) {
      size_t skip = i == head_ ? head_offset_ : 0;
      sink(chunks_[i].data() + skip, chunks_[i].size() - skip);
    }
    clear_keeping_capacity(pool);
  }
  void clear(BufferPool& pool) noexcept;
  void clear_keeping_capacity(BufferPool& pool) noexcept;

 private:
  // Past this size a copied chunk is not extended: a new one starts, so one
  // send never moves megabytes already queued.
  static constexpr size_t kCoalesceLimit = 64 * 1024;
  static constexpr int kMaxIov = 64;

  struct Chunk {
    std::string owned;
    std::shared_ptr<const std::string> shared;
    const char* data() const noexcept { return shared ? shared->data() : owned.data(); }
    size_t size() const noexcept { return shared ? shared->size() : owned.size(); }
  };

  // In the flat shape, not in flight, and `n` more bytes keep it within
  // kCoalesceLimit (or it is empty: one large copy is still one buffer).
  bool flat_takes(size_t n) const noexcept {
    return chunks_.empty() && in_flight_ == 0 && (flat_.empty() || flat_.size() + n <= kCoalesceLimit);
  }
  // The written head bytes leave the chunk list.
  void consume_chunks(BufferPool& pool, size_t n);
  // Moves the flat bytes, if any, to the front of the chunk list.
  void to_chunks();
  ssize_t write_flat(int fd, BufferPool& pool);
  ssize_t write_chunks(int fd, BufferPool& pool);

  std::string flat_;        // flat shape: the queued bytes; empty in the chunk shape
  size_t flat_offset_ = 0;  // bytes of flat_ already written
  std::vector<Chunk> chunks_;
  size_t head_ = 0;         // index of the first chunk not fully written
  size_t head_offset_ = 0;  // bytes of chunks_[head_] already written
  size_t bytes_ = 0;
  size_t in_flight_ = 0;   // io_uring: bytes from the head the kernel may be reading
  size_t flight_end_ = 0;  // chunk shape: chunks_[head_, flight_end_) hold them; not extended
};

}  // namespace windlass::detail
