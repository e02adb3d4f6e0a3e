// Frame headers and masking (RFC 6455 §5.2, §5.3), checked against the byte
// strings of the RFC's own examples (§5.7) and a byte-wise reference.
#include "proto/ws_frame.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace windlass::proto {
namespace {

std::vector<uint8_t> header(Opcode op, uint64_t len, bool fin = true, bool rsv1 = false,
                            const uint8_t* mask = nullptr) {
  std::vector<uint8_t> out(kMaxFrameHeader, 0xEE);
  const size_t n = encode_frame_header(out.data(), op, len, fin, rsv1, mask);
  EXPECT_EQ(n, frame_header_size(len, mask != nullptr));
  out.resize(n);
  return out;
}

TEST(WsFrame, classifies_control_opcodes) {
  EXPECT_TRUE(is_control(Opcode::close));
  EXPECT_TRUE(is_control(Opcode::ping));
  EXPECT_TRUE(is_control(Opcode::pong));
  EXPECT_FALSE(is_control(Opcode::continuation));
  EXPECT_FALSE(is_control(Opcode::text));
  EXPECT_FALSE(is_control(Opcode::binary));
}

TEST(WsFrame, encodes_the_rfc_single_frame_unmasked_text_header) {
  EXPECT_EQ(header(Opcode::text, 5), (std::vector<uint8_t>{0x81, 0x05}));
}

TEST(WsFrame, encodes_the_rfc_single_frame_masked_text_header) {
  const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  EXPECT_EQ(header(Opcode::text, 5, true, false, key),
            (std::vector<uint8_t>{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}));
}

TEST(WsFrame, encodes_the_rfc_fragmented_text_headers) {
  EXPECT_EQ(header(Opcode::text, 3, false), (std::vector<uint8_t>{0x01, 0x03}));
  EXPECT_EQ(header(Opcode::continuation, 2, true), (std::vector<uint8_t>{0x80, 0x02}));
}

TEST(WsFrame, encodes_the_rfc_ping_and_pong_headers) {
  EXPECT_EQ(header(Opcode::ping, 5), (std::vector<uint8_t>{0x89, 0x05}));
  const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  EXPECT_EQ(header(Opcode::pong, 5, true, false, key),
            (std::vector<uint8_t>{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d}));
}

TEST(WsFrame, encodes_the_rfc_256_byte_binary_header_with_16_bit_length) {
  EXPECT_EQ(header(Opcode::binary, 256), (std::vector<uint8_t>{0x82, 0x7E, 0x01, 0x00}));
}

TEST(WsFrame, encodes_the_rfc_64_kib_binary_header_with_64_bit_length) {
  EXPECT_EQ(header(Opcode::binary, 65536),
            (std::vector<uint8_t>{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
}

TEST(WsFrame, uses_the_minimal_length_encoding_at_each_boundary) {
  EXPECT_EQ(header(Opcode::binary, 0), (std::vector<uint8_t>{0x82, 0x00}));
  EXPECT_EQ(header(Opcode::binary, 125), (std::vector<uint8_t>{0x82, 0x7D}));
  EXPECT_EQ(header(Opcode::binary, 126), (std::vector<uint8_t>{0x82, 0x7E, 0x00, 0x7E}));
  EXPECT_EQ(header(Opcode::binary, 65535), (std::vector<uint8_t>{0x82, 0x7E, 0xFF, 0xFF}));
  EXPECT_EQ(header(Opcode::binary, 0x0102030405060708ull),
            (std::vector<uint8_t>{0x82, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(WsFrame, sets_rsv1_and_clears_fin_when_asked) {
  EXPECT_EQ(header(Opcode::text, 1, true, true), (std::vector<uint8_t>{0xC1, 0x01}));
  EXPECT_EQ(header(Opcode::binary, 1, false, true), (std::vector<uint8_t>{0x42, 0x01}));
}

TEST(WsFrame, puts_the_mask_after_an_extended_length) {
  const uint8_t key[4] = {1, 2, 3, 4};
  EXPECT_EQ(header(Opcode::binary, 300, true, false, key),
            (std::vector<uint8_t>{0x82, 0xFE, 0x01, 0x2C, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::binary, 70000, true, false, key),
            (std::vector<uint8_t>{0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70, 1, 2, 3, 4}));
}

TEST(WsFrame, computes_header_sizes) {
  EXPECT_EQ(frame_header_size(0, false), 2u);
  EXPECT_EQ(frame_header_size(125, true), 6u);
  EXPECT_EQ(frame_header_size(126, false), 4u);
  EXPECT_EQ(frame_header_size(65535, true), 8u);
  EXPECT_EQ(frame_header_size(65536, false), 10u);
  EXPECT_EQ(frame_header_size(~uint64_t{0} >> 1, true), kMaxFrameHeader);
}

TEST(WsFrame, masks_the_rfc_hello_example) {
  const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint8_t data[5] = {'H', 'e', 'l', 'l', 'o'};
  apply_mask(data, 5, key);
  EXPECT_EQ(std::vector<uint8_t>(data, data + 5), (std::vector<uint8_t>{0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  apply_mask(data, 5, key);
  EXPECT_EQ(std::vector<uint8_t>(data, data + 5), (std::vector<uint8_t>{'H', 'e', 'l', 'l', 'o'}));
}

TEST(WsFrame, masks_like_the_bytewise_definition_at_every_alignment_length_and_offset) {
  std::mt19937 rng(7);
  std::vector<uint8_t> storage(600);
  for (auto& b : storage) b = static_cast<uint8_t>(rng());
  const uint8_t key[4] = {0xA1, 0x5B, 0x00, 0xFF};
  for (size_t align = 0; align < 16; ++align) {
    for (size_t len :
         {0u, 1u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 32u, 33u, 63u, 64u, 65u, 79u, 100u, 128u, 511u}) {
      for (size_t offset = 0; offset < 9; ++offset) {
        std::vector<uint8_t> buf = storage;
        std::vector<uint8_t> expected = storage;
        for (size_t i = 0; i < len; ++i) expected[align + i] ^= key[(offset + i) % 4];
        apply_mask(buf.data() + align, len, key, offset);
        ASSERT_EQ(buf, expected) << "align " << align << " len " << len << " offset " << offset;
      }
    }
  }
}

// apply_mask_is_ascii must unmask exactly like apply_mask and report a
// single high bit wherever it lands: in the unaligned head, in any of the
// four vectors of the unrolled block, in the single-vector loop or in the tail.
TEST(WsFrame, mask_with_ascii_tally_finds_one_high_byte_anywhere) {
  const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  for (size_t align = 0; align < 16; ++align) {
    for (size_t len : {1u, 5u, 16u, 17u, 47u, 64u, 65u, 130u, 200u}) {
      for (size_t offset = 0; offset < 4; ++offset) {
        std::vector<uint8_t> plain(align + len + 8, 'a');
        for (size_t hot = 0; hot <= len; ++hot) {  // hot == len: all ASCII
          std::vector<uint8_t> expected = plain;
          if (hot < len) expected[align + hot] = 0xC3;
          std::vector<uint8_t> buf = expected;
          for (size_t i = 0; i < len; ++i) buf[align + i] ^= key[(offset + i) % 4];
          const bool ascii = apply_mask_is_ascii(buf.data() + align, len, key, offset);
          ASSERT_EQ(buf, expected) << "align " << align << " len " << len << " hot " << hot;
          ASSERT_EQ(ascii, hot == len) << "align " << align << " len " << len << " hot " << hot;
        }
      }
    }
  }
}

TEST(WsFrame, masks_a_payload_in_pieces_like_in_one_go) {
  const uint8_t key[4] = {9, 8, 7, 6};
  std::vector<uint8_t> one(1000), pieces(1000);
  for (size_t i = 0; i < one.size(); ++i) one[i] = pieces[i] = static_cast<uint8_t>(i * 31);
  apply_mask(one.data(), one.size(), key);
  size_t done = 0;
  for (size_t cut : {1u, 2u, 5u, 13u, 64u, 3u, 200u}) {
    apply_mask(pieces.data() + done, cut, key, done);
    done += cut;
  }
  apply_mask(pieces.data() + done, pieces.size() - done, key, done);
  EXPECT_EQ(one, pieces);
}

}  // namespace
}  // namespace windlass::proto
