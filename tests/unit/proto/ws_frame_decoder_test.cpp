// FrameDecoder: RFC 6455 §5 framing as a server receives it. Every test that
// decodes goes through expect_events, which feeds the input whole, byte by
// byte, in seeded random splits and with a sink that keeps stopping the
// decoder, and expects the same events each time.
#include "proto/ws_frame_decoder.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "unit/proto/frame_test_util.hpp"

namespace windlass::proto {
namespace {

using test::bytes;
using test::Bytes;
using test::client_frame;
using test::close_body;
using test::Event;
using test::expect_events;
using test::raw_frame;
using test::server_frame;

DecoderOptions client_side() {
  DecoderOptions o;
  o.require_mask = false;
  return o;
}

DecoderOptions with_deflate() {
  DecoderOptions o;
  o.allow_rsv1 = true;
  return o;
}

DecoderOptions max_size(uint64_t n) {
  DecoderOptions o;
  o.max_message_size = n;
  return o;
}

// --- RFC 6455 §5.7 examples, verbatim -------------------------------------

TEST(FrameDecoder, decodes_rfc_single_frame_unmasked_text_on_client_side) {
  expect_events(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), {Event::text("Hello")}, client_side());
}

TEST(FrameDecoder, rejects_rfc_single_frame_unmasked_text_on_server_side) {
  expect_events(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}),
                {Event::failure(FrameError::unmasked_frame)});
}

TEST(FrameDecoder, decodes_rfc_single_frame_masked_text) {
  expect_events(bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}),
                {Event::text("Hello")});
}

TEST(FrameDecoder, decodes_rfc_fragmented_unmasked_text) {
  expect_events(bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}), {Event::text("Hello")},
                client_side());
}

TEST(FrameDecoder, decodes_rfc_fragmented_text_masked) {
  expect_events(client_frame(Opcode::text, "Hel", false) + client_frame(Opcode::continuation, "lo", true),
                {Event::text("Hello")});
}

TEST(FrameDecoder, decodes_rfc_unmasked_ping) {
  expect_events(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), {Event::ping("Hello")}, client_side());
}

TEST(FrameDecoder, decodes_rfc_masked_pong) {
  expect_events(bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}),
                {Event::pong("Hello")});
}

TEST(FrameDecoder, decodes_rfc_256_byte_binary_with_16_bit_length) {
  Bytes payload(256, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  Bytes input = bytes({0x82, 0x7E, 0x01, 0x00}) + payload;
  expect_events(input, {Event::binary(payload)}, client_side());
  expect_events(client_frame(Opcode::binary, payload), {Event::binary(payload)});
}

TEST(FrameDecoder, decodes_rfc_64_kib_binary_with_64_bit_length) {
  Bytes payload(65536, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 13 + (i >> 8));
  Bytes input = bytes({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}) + payload;
  expect_events(input, {Event::binary(payload)}, client_side());
  expect_events(client_frame(Opcode::binary, payload), {Event::binary(payload)});
}

// --- Data messages and chunks ---------------------------------------------

TEST(FrameDecoder, delivers_a_whole_frame_as_one_zero_copy_chunk) {
  Bytes input = client_frame(Opcode::text, "zero copy please");
  std::vector<uint8_t> buf(input.begin(), input.end());
  struct Sink : test::RecordingSink {
    const uint8_t* chunk = nullptr;
    bool first = false;
    bool last = false;
    bool on_data(Opcode op, bool c, uint8_t* p, size_t len, bool f, bool l) {
      chunk = p;
      first = f;
      last = l;
      return RecordingSink::on_data(op, c, p, len, f, l);
    }
  } sink;
  FrameDecoder decoder;
  const DecodeResult r = decoder.feed(buf.data(), buf.size(), sink);
  EXPECT_EQ(r.consumed, buf.size());
  EXPECT_EQ(r.error, FrameError::none);
  EXPECT_EQ(sink.data_calls, 1);
  EXPECT_TRUE(sink.first && sink.last);
  EXPECT_EQ(sink.chunk, buf.data() + 6) << "the payload is unmasked in place, not copied";
  EXPECT_EQ(std::memcmp(buf.data() + 6, "zero copy please", 16), 0);
}

TEST(FrameDecoder, delivers_payload_as_it_arrives_with_first_and_last_flags) {
  Bytes input = client_frame(Opcode::binary, "abcdefgh");
  std::vector<uint8_t> buf(input.begin(), input.end());
  struct Chunk {
    std::string data;
    bool first;
    bool last;
  };
  struct Sink : test::RecordingSink {
    std::vector<Chunk> chunks;
    bool on_data(Opcode op, bool c, uint8_t* p, size_t len, bool f, bool l) {
      chunks.push_back({std::string(reinterpret_cast<char*>(p), len), f, l});
      return RecordingSink::on_data(op, c, p, len, f, l);
    }
  } sink;
  FrameDecoder decoder;
  EXPECT_EQ(decoder.feed(buf.data(), 9, sink).consumed, 9u);  // header + 3 payload bytes
  EXPECT_EQ(decoder.feed(buf.data() + 9, 3, sink).consumed, 3u);
  EXPECT_EQ(decoder.feed(buf.data() + 12, 2, sink).consumed, 2u);
  ASSERT_EQ(sink.chunks.size(), 3u);
  EXPECT_EQ(sink.chunks[0].data, "abc");
  EXPECT_TRUE(sink.chunks[0].first && !sink.chunks[0].last);
  EXPECT_EQ(sink.chunks[1].data, "def");
  EXPECT_TRUE(!sink.chunks[1].first && !sink.chunks[1].last);
  EXPECT_EQ(sink.chunks[2].data, "gh");
  EXPECT_TRUE(!sink.chunks[2].first && sink.chunks[2].last);
}

TEST(FrameDecoder, delivers_an_empty_message_as_one_empty_first_and_last_chunk) {
  expect_events(client_frame(Opcode::text, ""), {Event::text("")});
  expect_events(client_frame(Opcode::binary, ""), {Event::binary("")});
}

TEST(FrameDecoder, ends_a_fragmented_message_with_an_empty_last_chunk_on_empty_fin_frame) {
  expect_events(client_frame(Opcode::text, "abc", false) + client_frame(Opcode::continuation, "", true),
                {Event::text("abc")});
}

TEST(FrameDecoder, skips_empty_fragments_that_do_not_end_the_message) {
  expect_events(client_frame(Opcode::binary, "", false) + client_frame(Opcode::continuation, "", false) +
                    client_frame(Opcode::continuation, "xy", false) +
                    client_frame(Opcode::continuation, "", false) +
                    client_frame(Opcode::continuation, "z", true),
                {Event::binary("xyz")});
  expect_events(client_frame(Opcode::text, "", false) + client_frame(Opcode::continuation, "", true),
                {Event::text("")});
}

TEST(FrameDecoder, decodes_many_frames_from_one_buffer) {
  Bytes input;
  std::vector<Event> expected;
  for (int i = 0; i < 50; ++i) {
    const std::string p(static_cast<size_t>(i * 3), static_cast<char>('a' + i % 26));
    input += client_frame(i % 2 == 0 ? Opcode::text : Opcode::binary, p, true, false,
                          {static_cast<uint8_t>(i), 0x11, 0x22, static_cast<uint8_t>(0xff - i)});
    expected.push_back(i % 2 == 0 ? Event::text(p) : Event::binary(p));
  }
  expect_events(input, expected);
}

TEST(FrameDecoder, decodes_16_and_64_bit_length_boundaries) {
  for (size_t n : {125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    SCOPED_TRACE(n);
    Bytes payload(n, 'q');
    payload[n / 2] = 'Z';
    expect_events(client_frame(Opcode::binary, payload), {Event::binary(payload)});
  }
}

TEST(FrameDecoder, interleaves_control_frames_within_a_fragmented_message) {
  // §5.4: "Control frames MAY be injected in the middle of a fragmented message."
  expect_events(client_frame(Opcode::text, "Hel", false) + client_frame(Opcode::ping, "p1") +
                    client_frame(Opcode::continuation, "l", false) + client_frame(Opcode::pong, "p2") +
                    client_frame(Opcode::continuation, "o", true) + client_frame(Opcode::ping, ""),
                {Event::ping("p1"), Event::pong("p2"), Event::text("Hello"), Event::ping("")});
}

TEST(FrameDecoder, reports_a_message_in_progress_only_between_fragments) {
  FrameDecoder decoder;
  test::RecordingSink sink;
  Bytes a = client_frame(Opcode::text, "ab", false);
  Bytes b = client_frame(Opcode::continuation, "cd", true);
  std::vector<uint8_t> buf(a.begin(), a.end());
  EXPECT_FALSE(decoder.in_message());
  decoder.feed(buf.data(), buf.size(), sink);
  EXPECT_TRUE(decoder.in_message());
  buf.assign(b.begin(), b.end());
  decoder.feed(buf.data(), buf.size(), sink);
  EXPECT_FALSE(decoder.in_message());
}

TEST(FrameDecoder, decodes_a_control_payload_split_across_reads) {
  const Bytes payload(125, 'c');
  const Bytes input = client_frame(Opcode::ping, payload);
  expect_events(input, {Event::ping(payload)});
}

TEST(FrameDecoder, accepts_a_control_payload_of_exactly_125_bytes) {
  expect_events(client_frame(Opcode::pong, Bytes(125, 'x')), {Event::pong(Bytes(125, 'x'))});
}

TEST(FrameDecoder, accepts_masked_frames_on_client_side_too) {
  expect_events(client_frame(Opcode::text, "masked"), {Event::text("masked")}, client_side());
}

TEST(FrameDecoder, accepts_a_zero_masking_key) {
  expect_events(client_frame(Opcode::text, "clear", true, false, {0, 0, 0, 0}), {Event::text("clear")});
}

// --- Sink control ----------------------------------------------------------

TEST(FrameDecoder, stops_when_the_sink_returns_false_and_resumes_exactly) {
  Bytes input = client_frame(Opcode::text, "one") + client_frame(Opcode::ping, "two") +
                client_frame(Opcode::binary, "three");
  std::vector<uint8_t> buf(input.begin(), input.end());
  test::RecordingSink sink;
  sink.stop_every = 1;
  FrameDecoder decoder;
  const size_t first_frame = 6 + 3;
  DecodeResult r = decoder.feed(buf.data(), buf.size(), sink);
  EXPECT_EQ(r.error, FrameError::none);
  EXPECT_EQ(r.consumed, first_frame);
  ASSERT_EQ(sink.events.size(), 1u);
  size_t off = r.consumed;
  while (off < buf.size()) {
    r = decoder.feed(buf.data() + off, buf.size() - off, sink);
    ASSERT_GT(r.consumed, 0u);
    off += r.consumed;
  }
  EXPECT_EQ(sink.events,
            (std::vector<Event>{Event::text("one"), Event::ping("two"), Event::binary("three")}));
}

// --- Header errors ---------------------------------------------------------

TEST(FrameDecoder, rejects_rsv2_and_rsv3) {
  for (uint8_t rsv : std::initializer_list<uint8_t>{0x20, 0x10, 0x30, 0x70}) {
    SCOPED_TRACE(static_cast<int>(rsv));
    expect_events(raw_frame(static_cast<uint8_t>(0x81 | rsv), "x"),
                  {Event::failure(FrameError::reserved_bits)});
    expect_events(raw_frame(static_cast<uint8_t>(0x81 | rsv), "x"),
                  {Event::failure(FrameError::reserved_bits)}, with_deflate());
  }
}

TEST(FrameDecoder, rejects_rsv1_without_permessage_deflate) {
  expect_events(client_frame(Opcode::text, "x", true, true), {Event::failure(FrameError::reserved_bits)});
}

TEST(FrameDecoder, accepts_rsv1_on_the_first_frame_with_permessage_deflate) {
  // Compressed text is not UTF-8 checked here (RFC 7692: after inflating).
  const Bytes deflated = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
  expect_events(client_frame(Opcode::text, deflated, true, true),
                {Event::message(Opcode::text, deflated, true)}, with_deflate());
  expect_events(
      client_frame(Opcode::binary, "ab", false, true) + client_frame(Opcode::continuation, "cd", true),
      {Event::message(Opcode::binary, "abcd", true)}, with_deflate());
}

TEST(FrameDecoder, follows_set_allow_rsv1) {
  FrameDecoder decoder;
  decoder.set_allow_rsv1(true);
  EXPECT_TRUE(decoder.options().allow_rsv1);
  Bytes input = client_frame(Opcode::binary, "z", true, true);
  std::vector<uint8_t> buf(input.begin(), input.end());
  test::RecordingSink sink;
  EXPECT_EQ(decoder.feed(buf.data(), buf.size(), sink).error, FrameError::none);
  EXPECT_EQ(sink.events, std::vector<Event>{Event::message(Opcode::binary, "z", true)});
}

TEST(FrameDecoder, rejects_rsv1_on_a_continuation_frame) {
  // RFC 7692 §6.1: RSV1 is set on the first frame of a message only.
  expect_events(
      client_frame(Opcode::text, "a", false, true) + client_frame(Opcode::continuation, "b", true, true),
      {Event::failure(FrameError::reserved_bits)}, with_deflate());
}

TEST(FrameDecoder, rejects_rsv1_on_a_control_frame) {
  expect_events(client_frame(Opcode::ping, "a", true, true), {Event::failure(FrameError::reserved_bits)},
                with_deflate());
}

TEST(FrameDecoder, rejects_every_reserved_opcode) {
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE(op);
    expect_events(raw_frame(static_cast<uint8_t>(0x80 | op), "x"),
                  {Event::failure(FrameError::unknown_opcode)});
  }
}

TEST(FrameDecoder, rejects_an_unmasked_frame) {
  expect_events(server_frame(Opcode::binary, "abc"), {Event::failure(FrameError::unmasked_frame)});
  expect_events(server_frame(Opcode::close, ""), {Event::failure(FrameError::unmasked_frame)});
}

TEST(FrameDecoder, rejects_a_64_bit_length_with_its_most_significant_bit_set) {
  Bytes input = bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 1, 2, 3, 4});
  expect_events(input, {Event::failure(FrameError::length_msb_set)}, max_size(~uint64_t{0}));
}

TEST(FrameDecoder, rejects_a_control_frame_longer_than_125_bytes) {
  expect_events(client_frame(Opcode::ping, Bytes(126, 'x')), {Event::failure(FrameError::control_too_long)});
  expect_events(client_frame(Opcode::close, Bytes(70000, 'x')),
                {Event::failure(FrameError::control_too_long)});
}

TEST(FrameDecoder, rejects_fragmented_control_frame) {
  for (Opcode op : {Opcode::ping, Opcode::pong, Opcode::close}) {
    expect_events(client_frame(op, "x", false), {Event::failure(FrameError::fragmented_control)});
  }
}

TEST(FrameDecoder, rejects_a_continuation_without_a_message_in_progress) {
  expect_events(client_frame(Opcode::continuation, "x"),
                {Event::failure(FrameError::unexpected_continuation)});
  expect_events(client_frame(Opcode::text, "a") + client_frame(Opcode::continuation, "b"),
                {Event::text("a"), Event::failure(FrameError::unexpected_continuation)});
}

TEST(FrameDecoder, rejects_a_new_data_frame_inside_a_fragmented_message) {
  expect_events(client_frame(Opcode::text, "a", false) + client_frame(Opcode::binary, "b"),
                {Event::failure(FrameError::expected_continuation)});
  expect_events(client_frame(Opcode::binary, "a", false) + client_frame(Opcode::ping, "p") +
                    client_frame(Opcode::text, "b", false),
                {Event::ping("p"), Event::failure(FrameError::expected_continuation)});
}

// --- Message size ----------------------------------------------------------

TEST(FrameDecoder, accepts_a_message_of_exactly_max_message_size) {
  expect_events(client_frame(Opcode::binary, Bytes(100, 'm')), {Event::binary(Bytes(100, 'm'))},
                max_size(100));
  expect_events(client_frame(Opcode::binary, Bytes(60, 'm'), false) +
                    client_frame(Opcode::continuation, Bytes(40, 'n')),
                {Event::binary(Bytes(60, 'm') + Bytes(40, 'n'))}, max_size(100));
}

TEST(FrameDecoder, rejects_message_too_big_before_delivering_any_payload) {
  // Only the header is given: the announced length alone fails it.
  Bytes header = client_frame(Opcode::binary, Bytes(101, 'm')).substr(0, 6);
  expect_events(header, {Event::failure(FrameError::message_too_big)}, max_size(100));
  FrameDecoder decoder(max_size(100));
  test::RecordingSink sink;
  Bytes input = client_frame(Opcode::binary, Bytes(101, 'm'));
  std::vector<uint8_t> buf(input.begin(), input.end());
  EXPECT_EQ(decoder.feed(buf.data(), buf.size(), sink).error, FrameError::message_too_big);
  EXPECT_EQ(sink.data_calls, 0);
}

TEST(FrameDecoder, rejects_message_too_big_summed_over_fragments) {
  expect_events(client_frame(Opcode::text, Bytes(60, 'm'), false) + client_frame(Opcode::ping, "") +
                    client_frame(Opcode::continuation, Bytes(41, 'n')),
                {Event::ping(""), Event::failure(FrameError::message_too_big)}, max_size(100));
}

TEST(FrameDecoder, does_not_count_control_frames_towards_the_message_size) {
  expect_events(client_frame(Opcode::text, Bytes(10, 'm'), false) +
                    client_frame(Opcode::ping, Bytes(100, 'p')) +
                    client_frame(Opcode::continuation, Bytes(10, 'n')),
                {Event::ping(Bytes(100, 'p')), Event::text(Bytes(10, 'm') + Bytes(10, 'n'))}, max_size(20));
}

TEST(FrameDecoder, counts_the_size_of_each_message_afresh) {
  expect_events(client_frame(Opcode::binary, Bytes(20, 'a')) + client_frame(Opcode::binary, Bytes(20, 'b')),
                {Event::binary(Bytes(20, 'a')), Event::binary(Bytes(20, 'b'))}, max_size(20));
}

// --- UTF-8 -----------------------------------------------------------------

TEST(FrameDecoder, rejects_invalid_utf8_in_a_text_message) {
  expect_events(client_frame(Opcode::text, "ok \xC0\xAF"), {Event::failure(FrameError::invalid_utf8)});
  expect_events(client_frame(Opcode::text, "\xED\xA0\x80"), {Event::failure(FrameError::invalid_utf8)});
}

TEST(FrameDecoder, fails_fast_on_invalid_utf8_before_the_frame_ends) {
  // Only the header and the first four payload bytes arrive; 0xF4 0x90 is
  // already above U+10FFFF, so the rest need not be waited for.
  Bytes input = client_frame(Opcode::text, "ab\xF4\x90\x80\x80 and much more text");
  expect_events(input.substr(0, 6 + 4), {Event::failure(FrameError::invalid_utf8)});
}

TEST(FrameDecoder, rejects_a_text_message_that_ends_inside_a_code_point) {
  expect_events(client_frame(Opcode::text, "euro \xE2\x82"), {Event::failure(FrameError::invalid_utf8)});
  expect_events(client_frame(Opcode::text, "\xE2\x82", false) + client_frame(Opcode::continuation, "", true),
                {Event::failure(FrameError::invalid_utf8)});
}

TEST(FrameDecoder, validates_utf8_across_fragment_boundaries) {
  // U+20AC and U+1F600 cut inside their encodings by the fragmentation.
  expect_events(client_frame(Opcode::text, "\xE2", false) +
                    client_frame(Opcode::continuation, "\x82", false) +
                    client_frame(Opcode::continuation, "\xAC \xF0\x9F", false) +
                    client_frame(Opcode::continuation, "\x98\x80", true),
                {Event::text("\xE2\x82\xAC \xF0\x9F\x98\x80")});
  expect_events(
      client_frame(Opcode::text, "\xF0\x9F", false) + client_frame(Opcode::continuation, "\x41", true),
      {Event::failure(FrameError::invalid_utf8)});
}

// Unmasking tells the decoder when a chunk is all ASCII, and the UTF-8 walk
// is skipped for it. A bad byte at any position of a long ASCII text, a
// code point split after an all-ASCII fragment, and a stray continuation
// byte opening a fragment must all still fail, and valid text still pass.
TEST(FrameDecoder, ascii_shortcut_still_catches_a_bad_byte_anywhere) {
  for (size_t at = 0; at < 130; ++at) {
    Bytes text(130, 'x');
    text[at] = '\xFF';
    expect_events(client_frame(Opcode::text, text), {Event::failure(FrameError::invalid_utf8)});
    text[at] = '\xC3';  // a lead byte: valid only with a continuation after it
    if (at + 1 < text.size()) {
      text[at + 1] = '\xA9';
      expect_events(client_frame(Opcode::text, text), {Event::text(text)});
    } else {
      expect_events(client_frame(Opcode::text, text), {Event::failure(FrameError::invalid_utf8)});
    }
  }
  expect_events(client_frame(Opcode::text, Bytes(40, 'a') + "\xE2", false) +
                    client_frame(Opcode::continuation, "\x82\xAC" + Bytes(40, 'b'), true),
                {Event::text(Bytes(40, 'a') + "\xE2\x82\xAC" + Bytes(40, 'b'))});
  expect_events(client_frame(Opcode::text, Bytes(40, 'a'), false) +
                    client_frame(Opcode::continuation, "\x82" + Bytes(40, 'b'), true),
                {Event::failure(FrameError::invalid_utf8)});
}

TEST(FrameDecoder, does_not_check_binary_messages_for_utf8) {
  expect_events(client_frame(Opcode::binary, "\xFF\xFE\xC0"), {Event::binary("\xFF\xFE\xC0")});
}

TEST(FrameDecoder, restarts_utf8_validation_for_each_message) {
  expect_events(client_frame(Opcode::binary, "\xE2", false) + client_frame(Opcode::continuation, "", true) +
                    client_frame(Opcode::text, "\xE2\x82\xAC"),
                {Event::binary("\xE2"), Event::text("\xE2\x82\xAC")});
}

// --- Close frames ----------------------------------------------------------

TEST(FrameDecoder, decodes_a_close_frame_with_code_and_reason) {
  expect_events(client_frame(Opcode::close, close_body(1000, "bye \xE2\x82\xAC")),
                {Event::close(1000, "bye \xE2\x82\xAC")});
  expect_events(client_frame(Opcode::close, close_body(4999)), {Event::close(4999)});
}

TEST(FrameDecoder, reports_1005_for_an_empty_close_frame) {
  expect_events(client_frame(Opcode::close, ""), {Event::close(1005)});
}

TEST(FrameDecoder, ignores_everything_after_a_close_frame) {
  // §5.5.1: the peer sends nothing after its close; anything it does send,
  // even garbage, is discarded.
  expect_events(client_frame(Opcode::close, close_body(1001)) + client_frame(Opcode::text, "x") +
                    bytes({0xff, 0xff, 0xff}),
                {Event::close(1001)});
  FrameDecoder decoder;
  test::RecordingSink sink;
  Bytes input = client_frame(Opcode::close, close_body(1000));
  std::vector<uint8_t> buf(input.begin(), input.end());
  decoder.feed(buf.data(), buf.size(), sink);
  EXPECT_TRUE(decoder.closed());
  uint8_t junk[5] = {0x00, 0x01, 0x02, 0xff, 0x88};
  const DecodeResult r = decoder.feed(junk, sizeof junk, sink);
  EXPECT_EQ(r.consumed, sizeof junk);
  EXPECT_EQ(r.error, FrameError::none);
  EXPECT_EQ(sink.events.size(), 1u);
}

TEST(FrameDecoder, rejects_a_close_payload_of_one_byte) {
  expect_events(client_frame(Opcode::close, "\x03"), {Event::failure(FrameError::close_one_byte)});
}

TEST(FrameDecoder, rejects_close_codes_not_allowed_on_the_wire) {
  for (uint16_t code : std::initializer_list<uint16_t>{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    expect_events(client_frame(Opcode::close, close_body(code, "r")),
                  {Event::failure(FrameError::close_invalid_code)});
  }
}

TEST(FrameDecoder, rejects_a_close_reason_that_is_not_utf8) {
  expect_events(client_frame(Opcode::close, close_body(1000, "bad \xFF")),
                {Event::failure(FrameError::close_invalid_utf8)});
  expect_events(client_frame(Opcode::close, close_body(1000, "cut \xE2\x82")),
                {Event::failure(FrameError::close_invalid_utf8)});
}

TEST(FrameDecoder, decodes_a_close_frame_inside_a_fragmented_message) {
  expect_events(client_frame(Opcode::text, "half", false) + client_frame(Opcode::close, close_body(1000)),
                {Event::close(1000)});
}

// --- Failure state ---------------------------------------------------------

TEST(FrameDecoder, reports_an_error_once_and_then_consumes_nothing) {
  FrameDecoder decoder;
  test::RecordingSink sink;
  Bytes input = client_frame(Opcode::text, "ok") + client_frame(Opcode::continuation, "x");
  std::vector<uint8_t> buf(input.begin(), input.end());
  DecodeResult r = decoder.feed(buf.data(), buf.size(), sink);
  EXPECT_EQ(r.error, FrameError::unexpected_continuation);
  EXPECT_TRUE(decoder.failed());
  EXPECT_FALSE(decoder.closed());
  uint8_t more[3] = {0x81, 0x80, 0x00};
  r = decoder.feed(more, sizeof more, sink);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(r.error, FrameError::unexpected_continuation);
  EXPECT_EQ(sink.error_calls, 1);
}

TEST(FrameDecoder, consumes_nothing_and_reports_nothing_for_an_empty_feed) {
  FrameDecoder decoder;
  test::RecordingSink sink;
  const DecodeResult r = decoder.feed(nullptr, 0, sink);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(r.error, FrameError::none);
  EXPECT_TRUE(sink.events.empty());
}

// --- Error table -----------------------------------------------------------

constexpr FrameError kAllErrors[] = {
    FrameError::reserved_bits,           FrameError::unknown_opcode,
    FrameError::unmasked_frame,          FrameError::length_msb_set,
    FrameError::control_too_long,        FrameError::fragmented_control,
    FrameError::unexpected_continuation, FrameError::expected_continuation,
    FrameError::message_too_big,         FrameError::invalid_utf8,
    FrameError::close_one_byte,          FrameError::close_invalid_code,
    FrameError::close_invalid_utf8,
};

TEST(FrameDecoder, maps_each_error_to_its_close_code) {
  EXPECT_EQ(close_code_for(FrameError::message_too_big), CloseCode::message_too_big);
  EXPECT_EQ(close_code_for(FrameError::invalid_utf8), CloseCode::invalid_payload);
  EXPECT_EQ(close_code_for(FrameError::close_invalid_utf8), CloseCode::invalid_payload);
  for (FrameError e : kAllErrors) {
    if (e == FrameError::message_too_big || e == FrameError::invalid_utf8 ||
        e == FrameError::close_invalid_utf8) {
      continue;
    }
    EXPECT_EQ(close_code_for(e), CloseCode::protocol_error) << describe(e);
  }
}

TEST(FrameDecoder, describes_each_error_with_a_distinct_short_ascii_reason) {
  std::set<std::string> seen;
  for (FrameError e : kAllErrors) {
    const std::string text = describe(e);
    EXPECT_FALSE(text.empty());
    EXPECT_LE(text.size(), 123u) << "must fit a close frame's reason";
    for (char c : text) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
    EXPECT_TRUE(seen.insert(text).second) << "duplicate reason: " << text;
  }
  EXPECT_FALSE(seen.count(describe(FrameError::none)));
}

// --- Randomised property ---------------------------------------------------

TEST(FrameDecoder, gives_the_same_events_for_random_valid_streams_under_any_split) {
  std::mt19937 rng(20240607);
  for (int round = 0; round < 40; ++round) {
    Bytes input;
    std::vector<Event> expected;
    const int messages = 1 + static_cast<int>(rng() % 6);
    for (int m = 0; m < messages; ++m) {
      const bool text = rng() % 2 == 0;
      const int fragments = 1 + static_cast<int>(rng() % 4);
      Bytes whole_message;
      for (int f = 0; f < fragments; ++f) {
        Bytes part(rng() % 300, '\0');
        for (auto& c : part) c = static_cast<char>(text ? 'a' + rng() % 26 : rng() & 0xff);
        whole_message += part;
        test::MaskKey key = {static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()),
                             static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())};
        const Opcode op = f == 0 ? (text ? Opcode::text : Opcode::binary) : Opcode::continuation;
        input += client_frame(op, part, f + 1 == fragments, false, key);
        if (f + 1 < fragments && rng() % 4 == 0) {
          input += client_frame(Opcode::ping, "k");
          expected.push_back(Event::ping("k"));
        }
      }
      expected.push_back(text ? Event::text(whole_message) : Event::binary(whole_message));
    }
    SCOPED_TRACE(round);
    expect_events(input, expected);
  }
}

}  // namespace
}  // namespace windlass::proto
