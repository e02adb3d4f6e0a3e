// What every layer of one loop shares, in one place: the receive buffer,
// the byte-buffer pool, the cork and scratch buffers. One LoopResources per loop, owned by that loop's Worker
// (src/app/worker.hpp) with the layers themselves; touched only by the
// loop's thread, so nothing here locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/buffer_pool.hpp"

namespace windlass::detail {

class Socket;

struct LoopResources {
  // One receive buffer for every socket of the loop (uWebSockets' idea):
  // an idle connection holds none. The padding lets a parser that reads a
  // few bytes past the end (simdjson needs 32) run on it without a copy.
  // Made by an epoll IoServer; io_uring receives into the loop's provided
  // buffers instead (loop/uring.hpp), with the same padding.
  static constexpr size_t kReadBufferSize = 512 * 1024;
  static constexpr size_t kReadBufferPadding = 64;
  std::unique_ptr<uint8_t[]> read_buffer;

  BufferPool pool;  // byte buffers for write queues and message reassembly

  // The cork (see Socket::uncork): what the socket being read sends.
  std::string cork;
  Socket* corked = nullptr;

  std::string tls_plain;     // decrypted bytes of the read being handled
  std::string deflate_out;   // compressed output of the send being made

};

}  // namespace windlass::detail
