// permessage-deflate (RFC 7692), server side: the extension negotiation
// (§5, §7.1) and the per-message payload transformation (§7.2). Pure: no
// I/O, no socket, clock, logger or global. zlib does the DEFLATE work
// (RFC 1951) and stays behind this header: users link -lz but need not
// include zlib.h.
//
// Negotiation. negotiate_deflate() reads the client's
// Sec-WebSocket-Extensions value, picks the first acceptable
// permessage-deflate offer (§5: offers come in the client's order of
// preference) and returns the agreed parameters with the exact value to
// send back. An offer with an unknown or duplicate parameter or an invalid
// value is declined and the next one tried (§7). A header that breaks the
// RFC 6455 §9.1 grammar is declined as a whole, as most servers do: the
// handshake still succeeds, without compression. Other extensions are
// ignored; the response names only permessage-deflate.
//
// Messages. A Deflater compresses whole server->client messages (§7.2.1);
// an Inflater decompresses client->server messages as their frames arrive
// (§7.2.2), with a hard limit on the inflated size checked while inflating:
// the output never grows past the limit, so a small "decompression bomb"
// costs at most max_message_size bytes of memory.
//
// Sharing a Deflater for broadcasts. A Deflater made with
// no_context_takeover resets before every message, so its output depends
// on nothing but the message and its window size: one such Deflater per
// loop can compress a broadcast once for every recipient that agreed
// server_no_context_takeover and a server_max_window_bits at least as large
// as its window_bits (a smaller window's matches reach back less far, so a
// larger-window inflater reads them too; level and mem_level are invisible
// to the receiver). A connection with context takeover needs its own
// Deflater: its stream is that peer's LZ77 context (§7.1.1.1) and cannot
// be anyone else's. DeflatePolicy::server_no_context_takeover makes every
// connection eligible for sharing.
//
// Memory (zlib 1.2.13, 64-bit), as memory() reports it by counting zlib's
// allocations; the DeflateMemory tests hold these figures. The z_streams
// are allocated on first use, not at construction, and release() frees
// them when a connection idles.
//   Deflater: (1 << (W + 2)) + (1 << (mem_level + 9)) + ~5.8 KiB, where W
//             is window_bits (9 when 8 was agreed, see DeflaterConfig).
//             W = 15, mem_level 8: ~262 KiB; W = 10, mem_level 4: ~18 KiB.
//   Inflater: (1 << window_bits) + ~7 KiB; window_bits 15: ~39 KiB.
//   The objects themselves are small (static_asserts in deflate.cpp).
//
// Thread safety: none; a Deflater or Inflater belongs to one loop thread.
// Distinct objects may be used on distinct threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proto/close_code.hpp"

namespace windlass::proto {

// --- Negotiation -----------------------------------------------------------

// The server's configuration. Values out of range are clamped to it (the
// config layer should reject them first; this only keeps zlib's
// initialisation from failing).
struct DeflatePolicy {
  bool enabled = true;
  // Ask the client to expect no context takeover from us even when it did
  // not offer it (§7.1.1.1): the server then keeps no per-connection
  // compression history and a shared Deflater can serve the connection.
  bool server_no_context_takeover = false;
  // Require the client to reset its context per message (§7.1.1.2), which
  // lets the server's Inflater release its state between messages.
  bool client_no_context_takeover = false;
  // Largest LZ77 window, in bits (8..15), the server compresses with.
  int server_max_window_bits = 15;
  // Largest window (8..15) the server inflates with. Below 15 it is a hard
  // limit: an offer without client_max_window_bits cannot be limited
  // (§7.1.2.2: the response MUST NOT carry it) and is declined. Firefox's
  // plain "permessage-deflate" is such an offer.
  int client_max_window_bits = 15;
  // Messages shorter than this are sent uncompressed (RSV1 clear, §6). The
  // layer above decides, before calling Deflater::compress().
  size_t min_compress_size = 64;
  int level = 6;      // zlib level 0..9: 6 is zlib's default, what ws and websockets use
  int mem_level = 8;  // zlib memLevel 1..9: hash table and buffer size, see Memory above
};

// What both ends agreed (§7.1). Window sizes are the values on the wire.
struct DeflateParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  uint8_t server_max_window_bits = 15;
  uint8_t client_max_window_bits = 15;

  bool operator==(const DeflateParams&) const = default;
};

enum class DeflateOutcome : uint8_t {
  accepted,
  disabled,             // DeflatePolicy::enabled is false
  not_offered,          // no permessage-deflate offer in the header
  no_acceptable_offer,  // every offer was invalid (§7) or could not meet the policy
  malformed_header,     // the header breaks the RFC 6455 §9.1 grammar: all declined
};

const char* describe(DeflateOutcome o) noexcept;

struct DeflateNegotiation {
  DeflateOutcome outcome = DeflateOutcome::not_offered;
  DeflateParams params;  // meaningful when accepted
  // The Sec-WebSocket-Extensions value to answer with, e.g.
  // "permessage-deflate; server_no_context_takeover; client_max_window_bits=10";
  // empty unless accepted.
  std::string response;

  bool accepted() const noexcept { return outcome == DeflateOutcome::accepted; }
};

// `header` is the Sec-WebSocket-Extensions value. Several header lines are
// one list (RFC 9110 §5.3): join them with ", " before calling. Extension
// and parameter names are compared exactly, as ws, websockets and Chromium
// do. A quoted value is unescaped first (RFC 6455 §9.1), so
// server_max_window_bits="10" means 10.
DeflateNegotiation negotiate_deflate(std::string_view header, const DeflatePolicy& policy);

// --- Errors ------------------------------------------------------------------

enum class DeflateError : uint8_t {
  none,
  out_of_memory,  // zlib could not allocate its state -> 1011
  internal,       // zlib broke its contract (no sync-flush marker) -> 1011
};

enum class InflateError : uint8_t {
  none,
  // Not DEFLATE data, a back-reference past the window, or a message that
  // does not end at a block boundary once the §7.2.2 tail is added. 1007,
  // as Node's ws sends for "invalid compressed data": the message's payload
  // is inconsistent with its type (RFC 6455 §7.4.1).
  corrupt,
  too_big,        // inflated size over max_message_size -> 1009
  out_of_memory,  // zlib could not allocate its state -> 1011
};

CloseCode close_code_for(DeflateError e) noexcept;
CloseCode close_code_for(InflateError e) noexcept;
const char* describe(DeflateError e) noexcept;
const char* describe(InflateError e) noexcept;

// --- Compression and decompression ----------------------------------------

namespace detail {
struct ZStream;  // a z_stream with a byte count, on the heap: zlib's state points back at it
struct DeflateStreamDeleter {
  void operator()(ZStream* s) const noexcept;
};
struct InflateStreamDeleter {
  void operator()(ZStream* s) const noexcept;
};
}  // namespace detail

struct DeflaterConfig {
  // The agreed server_max_window_bits, 8..15. zlib refuses 8 for raw
  // deflate, so 8 runs as 9. That still honours 8: zlib never emits a match
  // more than 2^W - 262 bytes back (its MAX_DIST), 250 bytes for W = 9,
  // inside the 256-byte window an 8-bit peer keeps. ws (through Node's
  // zlib) and Chromium do the same.
  int window_bits = 15;
  int mem_level = 8;
  int level = 6;
  // The agreed server_no_context_takeover (§7.1.1.1): reset before every message.
  bool no_context_takeover = false;
};

DeflaterConfig deflater_config(const DeflateParams& params, const DeflatePolicy& policy) noexcept;

class Deflater {
 public:
  explicit Deflater(DeflaterConfig config = {}) noexcept;

  // Compresses one whole message and appends the frame payload to `out`:
  // DEFLATE blocks ending in a sync flush, minus its 0x00 0x00 0xff 0xff
  // tail (§7.2.1). With context takeover the output must be sent: the
  // peer's window has to see the same bytes as ours, so choose between
  // compressed and plain (min_compress_size) before calling. On error
  // `out` is left as it was.
  DeflateError compress(const uint8_t* data, size_t len, std::string& out);
  DeflateError compress(std::string_view message, std::string& out) {
    return compress(reinterpret_cast<const uint8_t*>(message.data()), message.size(), out);
  }

  // Frees zlib's state (~262 KiB at the defaults) until the next message.
  // Always safe: with context takeover the next message merely cannot refer
  // to earlier ones; the peer's window is still valid, just unused.
  void release() noexcept;

  // Bytes zlib holds now (0 before the first message and after release()).
  size_t memory() const noexcept;
  const DeflaterConfig& config() const noexcept { return config_; }

 private:
  DeflaterConfig config_;
  std::unique_ptr<detail::ZStream, detail::DeflateStreamDeleter> stream_;
  bool dirty_ = false;  // a message went through the stream since its last reset
};

struct InflaterConfig {
  int window_bits = 15;                   // the agreed client_max_window_bits, 8..15
  bool no_context_takeover = false;       // the agreed client_no_context_takeover (§7.1.1.2)
  uint64_t max_message_size = 16u << 20;  // inflated bytes per message
};

InflaterConfig inflater_config(const DeflateParams& params, uint64_t max_message_size) noexcept;

class Inflater {
 public:
  explicit Inflater(InflaterConfig config = {}) noexcept;

  // Inflates the next piece of the current message's compressed payload
  // (any split: frames, reads) and appends the result to `out`. The first
  // call after finish() starts a new message. `out` grows only in bounded
  // steps and never beyond max_message_size bytes of this message; the
  // first byte over the limit is detected without being stored.
  InflateError feed(const uint8_t* data, size_t len, std::string& out);
  InflateError feed(std::string_view data, std::string& out) {
    return feed(reinterpret_cast<const uint8_t*>(data.data()), data.size(), out);
  }

  // Ends the message: inflates the 0x00 0x00 0xff 0xff tail (§7.2.2) and
  // checks the data stopped at a block boundary. A message with an empty
  // payload inflates to nothing.
  InflateError finish(std::string& out);

  // A whole message in one call: feed() then finish().
  InflateError inflate_message(std::string_view payload, std::string& out) {
    const InflateError e = feed(payload, out);
    return e != InflateError::none ? e : finish(out);
  }

  // Frees zlib's state between messages when nothing in it is needed
  // later: with client_no_context_takeover, or before the first message.
  // With context takeover the window is the client's context (§7.1.1.2)
  // and is kept; returns whether the state was freed.
  bool release() noexcept;

  // After an error every call returns it again: the connection must close.
  InflateError error() const noexcept { return error_; }
  bool in_message() const noexcept { return in_message_; }
  size_t memory() const noexcept;
  const InflaterConfig& config() const noexcept { return config_; }

 private:
  InflateError begin_message() noexcept;
  InflateError run(const uint8_t* data, size_t len, std::string& out, bool tail);
  void restart_stream() noexcept;
  InflateError fail(InflateError e) noexcept {
    error_ = e;
    return e;
  }

  InflaterConfig config_;
  std::unique_ptr<detail::ZStream, detail::InflateStreamDeleter> stream_;
  uint64_t produced_ = 0;  // inflated bytes of the current message
  InflateError error_ = InflateError::none;
  bool in_message_ = false;
  bool dirty_ = false;  // a message went through the stream since its last reset
  // The message's last DEFLATE block had BFINAL set and the stream has
  // already been restarted after it, so the tail is not needed.
  bool ended_ = false;
};

}  // namespace windlass::proto
