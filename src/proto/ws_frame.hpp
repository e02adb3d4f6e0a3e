// Shared WebSocket framing vocabulary (RFC 6455 §5.2): opcodes, masking,
// and server-side frame headers. Pure: no I/O, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace windlass::proto {

enum class Opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

constexpr bool is_control(Opcode op) noexcept {
  return (static_cast<uint8_t>(op) & 0x8) != 0;
}

// Largest frame header: 2 bytes + 8 bytes extended length + 4 bytes mask.
constexpr size_t kMaxFrameHeader = 14;
// Control frames carry at most 125 bytes of payload (§5.5).
constexpr size_t kMaxControlPayload = 125;

// Header size for a payload of `len` bytes (§5.2: 7-, 16- or 64-bit length).
constexpr size_t frame_header_size(uint64_t len, bool masked) noexcept {
  return (len < 126 ? size_t{2} : len <= 0xffff ? size_t{4} : size_t{10}) + (masked ? size_t{4} : size_t{0});
}

// Writes a frame header into `out` (at least kMaxFrameHeader bytes) and
// returns its size. Servers send unmasked frames (§5.1), so `mask` is null
// on the server path; clients (tests, the load generator) pass 4 bytes.
inline size_t encode_frame_header(uint8_t* out, Opcode op, uint64_t payload_len, bool fin = true,
                                  bool rsv1 = false, const uint8_t* mask = nullptr) noexcept {
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<uint8_t>(op));
  const uint8_t mask_bit = mask != nullptr ? 0x80 : 0;
  size_t n = 2;
  // §5.2: the minimal length encoding: 7 bits, then 126 + 16 bits, then
  // 127 + 64 bits, all in network byte order.
  if (payload_len < 126) {
    out[1] = static_cast<uint8_t>(mask_bit | payload_len);
  } else if (payload_len <= 0xffff) {
    out[1] = static_cast<uint8_t>(mask_bit | 126);
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    n = 4;
  } else {
    out[1] = static_cast<uint8_t>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
    n = 10;
  }
  if (mask != nullptr) {
    std::memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

// XORs `len` bytes with the 4-byte masking key (§5.3), starting at key
// position `key_offset % 4`, sixteen bytes at a time where it can. Masking
// and unmasking are the same operation.
void apply_mask(uint8_t* data, size_t len, const uint8_t mask[4], size_t key_offset = 0) noexcept;

// apply_mask, and true when every resulting byte is ASCII (below 0x80): the
// text path learns that in the same pass and skips its UTF-8 walk.
bool apply_mask_is_ascii(uint8_t* data, size_t len, const uint8_t mask[4], size_t key_offset = 0) noexcept;

}  // namespace windlass::proto
