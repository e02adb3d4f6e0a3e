#include "io/out_queue.hpp"

#include <cerrno>
#include <cstring>

namespace windlass::detail {

void OutQueue::append(BufferPool& pool, const void* data, size_t n) {
  if (n == 0) return;
  bool extend = !chunks_.empty() && !chunks_.back().shared &&
                chunks_.back().owned.size() + n <= kCoalesceLimit &&
                // Never grow the chunk the kernel is part-way through.
                !(chunks_.size() - 1 == head_ && head_offset_ > 0);
  if (!extend) chunks_.push_back(Chunk{pool.take(), nullptr});
  chunks_.back().owned.append(static_cast<const char*>(data), n);
  bytes_ += n;
}

void OutQueue::append_owned(std::string&& bytes) {
  if (bytes.empty()) return;
  bytes_ += bytes.size();
  chunks_.push_back(Chunk{std::move(bytes), nullptr});
}

void OutQueue::append_shared(BufferPool& pool, const void* header, size_t header_len,
                             std::shared_ptr<const std::string> payload) {
  append(pool, header, header_len);
  bytes_ += payload->size();
  chunks_.push_back(Chunk{{}, std::move(payload)});
}

ssize_t OutQueue::write_to(int fd, BufferPool& pool) {
  if (bytes_ == 0) return 0;
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
  size_t left = static_cast<size_t>(written);
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
    chunks_.clear();
    head_ = 0;
  } else if (head_ > 32 && head_ * 2 > chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
  return written;
}

void OutQueue::clear_keeping_capacity(BufferPool& pool) noexcept {
  for (auto& c : chunks_) pool.give(std::move(c.owned));
  chunks_.clear();
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

void OutQueue::clear(BufferPool& pool) noexcept {
  for (auto& c : chunks_) pool.give(std::move(c.owned));
  chunks_.clear();
  chunks_.shrink_to_fit();
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

}  // namespace windlass::detail
