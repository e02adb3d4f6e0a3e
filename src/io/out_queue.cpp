#include "io/out_queue.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace windlass::detail {

void OutQueue::append(BufferPool& pool, const void* data, size_t n) {
  if (n == 0) return;
  bytes_ += n;
  if (flat_takes(n)) {
    if (flat_.empty()) pool.refill(flat_);
    flat_.append(static_cast<const char*>(data), n);
    return;
  }
  to_chunks();
  bool extend = !chunks_.back().shared && chunks_.back().owned.size() + n <= kCoalesceLimit &&
                // Never grow the chunk the kernel is part-way through, or reading.
                !(chunks_.size() - 1 == head_ && head_offset_ > 0) && chunks_.size() - 1 >= flight_end_;
  if (!extend) chunks_.push_back(Chunk{pool.take(), nullptr});
  chunks_.back().owned.append(static_cast<const char*>(data), n);
}

void OutQueue::append(BufferPool& pool, const void* a, size_t an, const void* b, size_t bn) {
  // The flat shape's common case (a frame header and its payload) in one
  // step; anything else as two appends.
  if (flat_takes(an + bn)) {
    if (flat_.empty()) pool.refill(flat_);
    flat_.append(static_cast<const char*>(a), an);
    flat_.append(static_cast<const char*>(b), bn);
    bytes_ += an + bn;
    return;
  }
  append(pool, a, an);
  append(pool, b, bn);
}

void OutQueue::append_owned(std::string&& bytes) {
  if (bytes.empty()) return;
  bytes_ += bytes.size();
  if (chunks_.empty() && flat_.empty() && in_flight_ == 0) {
    flat_ = std::move(bytes);
    flat_offset_ = 0;
    return;
  }
  to_chunks();
  chunks_.push_back(Chunk{std::move(bytes), nullptr});
}

void OutQueue::append_shared(BufferPool& pool, const void* header, size_t header_len,
                             std::shared_ptr<const std::string> payload) {
  append(pool, header, header_len);
  to_chunks();  // the header may have gone to flat_; a shared payload needs the chunk shape
  bytes_ += payload->size();
  chunks_.push_back(Chunk{{}, std::move(payload)});
}

void OutQueue::to_chunks() {
  if (flat_.empty()) return;
  // The chunk list is empty whenever flat_ holds bytes.
  chunks_.push_back(Chunk{std::move(flat_), nullptr});
  head_ = 0;
  head_offset_ = flat_offset_;
  if (in_flight_ > 0) flight_end_ = 1;  // the moved buffer is the one the kernel reads
  flat_.clear();
  flat_offset_ = 0;
}

ssize_t OutQueue::write_to(int fd, BufferPool& pool) {
  if (bytes_ == 0) return 0;
  return chunks_.empty() ? write_flat(fd, pool) : write_chunks(fd, pool);
}

ssize_t OutQueue::write_flat(int fd, BufferPool& pool) {
  ssize_t written = ::write(fd, flat_.data() + flat_offset_, flat_.size() - flat_offset_);
  if (written < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return -errno;
  }
  bytes_ -= static_cast<size_t>(written);
  flat_offset_ += static_cast<size_t>(written);
  if (flat_offset_ == flat_.size()) {
    pool.give(std::move(flat_));
    flat_.clear();
    flat_offset_ = 0;
  }
  return written;
}

ssize_t OutQueue::write_chunks(int fd, BufferPool& pool) {
  iovec iov[kMaxIov];
  int n = 0;
  for (size_t i = head_; i < chunks_.size() && n < kMaxIov; ++i) {
    size_t skip = i == head_ ? head_offset_ : 0;
    iov[n].iov_base = const_cast<char*>(chunks_[i].data() + skip);
    iov[n].iov_len = chunks_[i].size() - skip;
    ++n;
  }
  ssize_t written = ::writev(fd, iov, n);
  if (written < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return -errno;
  }
  consume_chunks(pool, static_cast<size_t>(written));
  return written;
}

void OutQueue::consume_chunks(BufferPool& pool, size_t n) {
  size_t left = n;
  bytes_ -= left;
  while (left > 0) {
    size_t avail = chunks_[head_].size() - head_offset_;
    if (left < avail) {
      head_offset_ += left;
      break;
    }
    left -= avail;
    pool.give(std::move(chunks_[head_].owned));
    chunks_[head_].shared.reset();
    ++head_;
    head_offset_ = 0;
  }
  if (head_ == chunks_.size()) {
    chunks_.clear();  // back to the flat shape
    head_ = 0;
  } else if (head_ > 32 && head_ * 2 > chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

namespace {
// A std::string short enough to live inside itself moves its bytes when
// it is moved (a chunk list that grows moves them all): one in flight is
// given a heap block first, whose address moves never change.
void pin(std::string& s) {
  if (s.capacity() <= BufferPool::kInlineCapacity) s.reserve(BufferPool::kInlineCapacity + 1);
}
}  // namespace

int OutQueue::start_send(iovec* iov, int max) {
  in_flight_ = 0;
  flight_end_ = 0;
  if (bytes_ == 0 || max <= 0) return 0;
  if (chunks_.empty()) {
    pin(flat_);
    iov[0].iov_base = flat_.data() + flat_offset_;
    iov[0].iov_len = flat_.size() - flat_offset_;
    in_flight_ = iov[0].iov_len;
    return 1;
  }
  int n = 0;
  size_t i = head_;
  for (; i < chunks_.size() && n < max; ++i) {
    Chunk& c = chunks_[i];
    if (!c.shared) pin(c.owned);
    const size_t skip = i == head_ ? head_offset_ : 0;
    iov[n].iov_base = const_cast<char*>(c.data() + skip);
    iov[n].iov_len = c.size() - skip;
    in_flight_ += iov[n].iov_len;
    ++n;
  }
  flight_end_ = i;
  return n;
}

void OutQueue::finish_send(BufferPool& pool, size_t n) {
  in_flight_ = 0;
  flight_end_ = 0;
  if (n == 0) return;
  if (!chunks_.empty()) {
    consume_chunks(pool, n);
    return;
  }
  bytes_ -= n;
  flat_offset_ += n;
  if (flat_offset_ == flat_.size()) {
    pool.give(std::move(flat_));
    flat_.clear();
    flat_offset_ = 0;
  }
}

void OutQueue::clear_keeping_capacity(BufferPool& pool) noexcept {
  in_flight_ = 0;
  flight_end_ = 0;
  pool.give(std::move(flat_));
  flat_.clear();
  flat_offset_ = 0;
  for (auto& c : chunks_) pool.give(std::move(c.owned));
  chunks_.clear();
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

void OutQueue::clear(BufferPool& pool) noexcept {
  in_flight_ = 0;
  flight_end_ = 0;
  pool.give(std::move(flat_));
  flat_.clear();
  flat_offset_ = 0;
  for (auto& c : chunks_) pool.give(std::move(c.owned));
  chunks_.clear();
  chunks_.shrink_to_fit();
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

}  // namespace windlass::detail
