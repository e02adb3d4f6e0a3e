// Frame headers and masking (RFC 6455 §5.2, §5.3).
#include "proto/ws_frame.hpp"

#include <cstring>

namespace windlass::proto {

size_t encode_frame_header(uint8_t* out, Opcode op, uint64_t payload_len, bool fin, bool rsv1,
                           const uint8_t* mask) noexcept {
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

void apply_mask(uint8_t* data, size_t len, const uint8_t mask[4], size_t key_offset) noexcept {
  // §5.3: byte i of the payload is XORed with mask[i % 4]; `key_offset`
  // is how many payload bytes came before `data`.
  size_t i = 0;
  // Head: single bytes up to an 8-byte boundary, so the word loop below
  // stores to aligned addresses (loads and stores go through memcpy, so
  // this is for speed, not legality).
  const size_t misalign = reinterpret_cast<uintptr_t>(data) & 7;
  const size_t head = misalign == 0 ? 0 : (8 - misalign < len ? 8 - misalign : len);
  for (; i < head; ++i) data[i] ^= mask[(key_offset + i) & 3];

  // The key repeated to eight bytes, rotated to start where `data + i`
  // sits in the key. Built in memory order, so it is right on any endianness.
  uint8_t key_bytes[8];
  for (size_t k = 0; k < 8; ++k) key_bytes[k] = mask[(key_offset + i + k) & 3];
  uint64_t key;
  std::memcpy(&key, key_bytes, 8);

  for (; len - i >= 32; i += 32) {
    uint64_t w[4];
    std::memcpy(w, data + i, 32);
    w[0] ^= key;
    w[1] ^= key;
    w[2] ^= key;
    w[3] ^= key;
    std::memcpy(data + i, w, 32);
  }
  for (; len - i >= 8; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= key;
    std::memcpy(data + i, &w, 8);
  }
  // Tail: the key position only advanced by multiples of 8 (a multiple of
  // 4) since the head, so the byte-wise formula still holds.
  for (; i < len; ++i) data[i] ^= mask[(key_offset + i) & 3];
}

}  // namespace windlass::proto
