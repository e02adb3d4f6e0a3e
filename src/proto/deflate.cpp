// permessage-deflate (RFC 7692). See deflate.hpp.
#include "proto/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

namespace windlass::proto {

// The objects stay a few words; zlib's state lives behind the pointer.
static_assert(sizeof(Deflater) <= 32);
static_assert(sizeof(Inflater) <= 48);

// --- Negotiation -----------------------------------------------------------

namespace {

constexpr std::string_view kExtensionName = "permessage-deflate";

// RFC 9110 §5.6.2 tchar.
bool is_tchar(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

// RFC 9110 §5.6.4 qdtext, and the byte after a backslash in a quoted-pair.
bool is_qdtext(unsigned char c) noexcept {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E) ||
         c >= 0x80;
}
bool is_quoted_pair_char(unsigned char c) noexcept {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

// A parameter value as written: a token, or the inside of a quoted-string
// with its escapes still in place.
struct ParamValue {
  bool present = false;
  bool quoted = false;
  std::string_view raw;
};

// The window size in an offer, 8..15 written without leading zeros
// (§7.1.2.1, §7.1.2.2), after quoted-string unescaping (RFC 6455 §9.1);
// -1 when it is anything else.
int parse_window_bits(const ParamValue& v) noexcept {
  char digits[2];
  size_t n = 0;
  for (size_t i = 0; i < v.raw.size(); ++i) {
    char c = v.raw[i];
    if (v.quoted && c == '\\') c = v.raw[++i];  // the grammar checked a byte follows
    if (c < '0' || c > '9' || n == sizeof digits) return -1;
    digits[n++] = c;
  }
  if (n == 1) return digits[0] >= '8' ? digits[0] - '0' : -1;
  if (n == 2 && digits[0] == '1' && digits[1] <= '5') return 10 + (digits[1] - '0');
  return -1;
}

// One permessage-deflate offer, gathered parameter by parameter.
struct Offer {
  bool invalid = false;  // unknown or duplicate parameter, or an invalid value (§7)
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  bool has_server_bits = false;
  bool has_client_bits = false;
  int server_bits = 15;
  int client_bits = 15;  // 15 when client_max_window_bits came without a value

  void add(std::string_view name, const ParamValue& value) noexcept {
    if (name == "server_no_context_takeover") {
      // §7.1.1.1: no value.
      if (server_no_context_takeover || value.present) invalid = true;
      server_no_context_takeover = true;
    } else if (name == "client_no_context_takeover") {
      // §7.1.1.2: no value.
      if (client_no_context_takeover || value.present) invalid = true;
      client_no_context_takeover = true;
    } else if (name == "server_max_window_bits") {
      // §7.1.2.1: a value is required in an offer.
      const int bits = value.present ? parse_window_bits(value) : -1;
      if (has_server_bits || bits < 0) invalid = true;
      has_server_bits = true;
      server_bits = bits;
    } else if (name == "client_max_window_bits") {
      // §7.1.2.2: the value is optional; without one the client merely
      // says it supports the parameter in the response.
      const int bits = value.present ? parse_window_bits(value) : 15;
      if (has_client_bits || bits < 0) invalid = true;
      has_client_bits = true;
      client_bits = bits;
    } else {
      invalid = true;  // §7: a parameter not defined for use in an offer
    }
  }
};

int clamp_bits(int bits) noexcept {
  return std::clamp(bits, 8, 15);
}

// Decides on one valid offer. False when the policy cannot accept it.
bool accept_offer(const Offer& offer, const DeflatePolicy& policy, DeflateNegotiation& out) {
  const int policy_server_bits = clamp_bits(policy.server_max_window_bits);
  const int policy_client_bits = clamp_bits(policy.client_max_window_bits);
  // §7.1.2.2: without client_max_window_bits in the offer the response
  // MUST NOT carry it, so the client will use a 15-bit window; a server
  // limited to less must decline.
  if (!offer.has_client_bits && policy_client_bits < 15) return false;

  DeflateParams p;
  // §7.1.1.1: an offered server_no_context_takeover is accepted by echoing
  // it; the server MAY add it unasked.
  p.server_no_context_takeover = offer.server_no_context_takeover || policy.server_no_context_takeover;
  // §7.1.1.2: the server MAY send client_no_context_takeover; echoing an
  // offered one makes the client's hint binding, so the Inflater may reset.
  p.client_no_context_takeover = offer.client_no_context_takeover || policy.client_no_context_takeover;
  // §7.1.2.1: accept with the same or a smaller value than offered; the
  // server MAY send the parameter unasked to announce a smaller window.
  p.server_max_window_bits = static_cast<uint8_t>(std::min(policy_server_bits, offer.server_bits));
  // §7.1.2.2: the server may limit the client's window to no more than the
  // offered value.
  p.client_max_window_bits = static_cast<uint8_t>(std::min(policy_client_bits, offer.client_bits));

  std::string r(kExtensionName);
  if (p.server_no_context_takeover) r += "; server_no_context_takeover";
  if (p.client_no_context_takeover) r += "; client_no_context_takeover";
  if (offer.has_server_bits || p.server_max_window_bits < 15) {
    r += "; server_max_window_bits=";
    r += std::to_string(p.server_max_window_bits);
  }
  if (offer.has_client_bits && p.client_max_window_bits < 15) {
    r += "; client_max_window_bits=";
    r += std::to_string(p.client_max_window_bits);
  }
  out.outcome = DeflateOutcome::accepted;
  out.params = p;
  out.response = std::move(r);
  return true;
}

// A reader of the RFC 6455 §9.1 grammar:
//   extension-list = 1#extension
//   extension      = extension-token *( ";" extension-param )
//   extension-param = token [ "=" (token | quoted-string) ]
// with optional whitespace around the separators, and empty list elements
// allowed (RFC 9110 §5.6.1).
class ExtensionListReader {
 public:
  explicit ExtensionListReader(std::string_view s) noexcept : s_(s) {}

  // Reads the whole list, calling on_extension(name) at each extension and
  // on_param(name, value) at each of its parameters. False on a syntax error.
  template <class OnExtension, class OnParam>
  bool read(OnExtension&& on_extension, OnParam&& on_param) {
    for (;;) {
      skip_ows();
      if (at_end()) return true;
      if (s_[i_] == ',') {  // an empty element
        ++i_;
        continue;
      }
      const std::string_view name = token();
      if (name.empty()) return false;
      on_extension(name);
      for (;;) {
        skip_ows();
        if (at_end()) return true;
        if (s_[i_] == ',') {
          ++i_;
          break;
        }
        if (s_[i_] != ';') return false;
        ++i_;
        skip_ows();
        const std::string_view param = token();
        if (param.empty()) return false;
        skip_ows();
        ParamValue value;
        if (!at_end() && s_[i_] == '=') {
          ++i_;
          skip_ows();
          value.present = true;
          if (!at_end() && s_[i_] == '"') {
            value.quoted = true;
            if (!quoted_string(value.raw)) return false;
          } else {
            value.raw = token();
            if (value.raw.empty()) return false;
          }
        }
        on_param(param, value);
      }
    }
  }

 private:
  bool at_end() const noexcept { return i_ >= s_.size(); }
  void skip_ows() noexcept {
    while (!at_end() && is_ows(s_[i_])) ++i_;
  }
  std::string_view token() noexcept {
    const size_t begin = i_;
    while (!at_end() && is_tchar(static_cast<unsigned char>(s_[i_]))) ++i_;
    return s_.substr(begin, i_ - begin);
  }
  // At the opening quote; leaves the inside, escapes kept, in `raw`.
  bool quoted_string(std::string_view& raw) noexcept {
    const size_t begin = ++i_;
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        raw = s_.substr(begin, i_ - begin);
        ++i_;
        return true;
      }
      if (c == '\\') {
        if (i_ + 1 >= s_.size() || !is_quoted_pair_char(static_cast<unsigned char>(s_[i_ + 1]))) return false;
        i_ += 2;
      } else if (is_qdtext(c)) {
        ++i_;
      } else {
        return false;
      }
    }
    return false;  // unterminated
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

const char* describe(DeflateOutcome o) noexcept {
  switch (o) {
    case DeflateOutcome::accepted: return "permessage-deflate accepted";
    case DeflateOutcome::disabled: return "permessage-deflate disabled";
    case DeflateOutcome::not_offered: return "permessage-deflate not offered";
    case DeflateOutcome::no_acceptable_offer: return "no acceptable permessage-deflate offer";
    case DeflateOutcome::malformed_header: return "malformed Sec-WebSocket-Extensions header";
  }
  return "unknown";
}

DeflateNegotiation negotiate_deflate(std::string_view header, const DeflatePolicy& policy) {
  DeflateNegotiation result;
  if (!policy.enabled) {
    result.outcome = DeflateOutcome::disabled;
    return result;
  }
  bool offered = false;
  bool in_offer = false;  // the current extension is a permessage-deflate offer still to decide
  Offer offer;
  // §5: offers are in the client's order of preference; the first one the
  // server can accept wins. Declining one offer means trying the next.
  const auto decide = [&] {
    if (in_offer && !result.accepted() && !offer.invalid) accept_offer(offer, policy, result);
    in_offer = false;
  };
  ExtensionListReader reader(header);
  const bool well_formed = reader.read(
      [&](std::string_view name) {
        decide();
        if (name == kExtensionName) {
          offered = true;
          in_offer = true;
          offer = Offer{};
        }
      },
      [&](std::string_view name, const ParamValue& value) {
        if (in_offer) offer.add(name, value);
      });
  if (!well_formed) {
    // A list that breaks the grammar cannot be trusted to have been split
    // into offers correctly, so nothing in it is accepted.
    return DeflateNegotiation{DeflateOutcome::malformed_header, {}, {}};
  }
  decide();
  if (!result.accepted())
    result.outcome = offered ? DeflateOutcome::no_acceptable_offer : DeflateOutcome::not_offered;
  return result;
}

// --- Errors ------------------------------------------------------------------

CloseCode close_code_for(DeflateError e) noexcept {
  return e == DeflateError::none ? CloseCode::normal : CloseCode::internal_error;
}

CloseCode close_code_for(InflateError e) noexcept {
  switch (e) {
    case InflateError::none: return CloseCode::normal;
    case InflateError::corrupt: return CloseCode::invalid_payload;
    case InflateError::too_big: return CloseCode::message_too_big;
    case InflateError::out_of_memory: return CloseCode::internal_error;
  }
  return CloseCode::internal_error;
}

const char* describe(DeflateError e) noexcept {
  switch (e) {
    case DeflateError::none: return "ok";
    case DeflateError::out_of_memory: return "out of memory for the deflate state";
    case DeflateError::internal: return "deflate failed";
  }
  return "unknown";
}

const char* describe(InflateError e) noexcept {
  switch (e) {
    case InflateError::none: return "ok";
    case InflateError::corrupt: return "invalid compressed data";
    case InflateError::too_big: return "inflated message too big";
    case InflateError::out_of_memory: return "out of memory for the inflate state";
  }
  return "unknown";
}

// --- zlib streams ------------------------------------------------------------

namespace detail {

struct ZStream {
  z_stream z{};
  size_t bytes = 0;  // held by zlib through counting_alloc
};

namespace {

// Each block carries its size in front, so that memory() can report what
// zlib holds. The header keeps the block maximally aligned.
constexpr size_t kAllocHeader = alignof(std::max_align_t);

voidpf counting_alloc(voidpf opaque, uInt items, uInt size) {
  const size_t n = static_cast<size_t>(items) * size;
  if (size != 0 && n / size != items) return Z_NULL;
  void* block = std::malloc(n + kAllocHeader);
  if (block == nullptr) return Z_NULL;
  std::memcpy(block, &n, sizeof n);
  static_cast<ZStream*>(opaque)->bytes += n;
  return static_cast<char*>(block) + kAllocHeader;
}

void counting_free(voidpf opaque, voidpf address) {
  if (address == Z_NULL) return;
  char* block = static_cast<char*>(address) - kAllocHeader;
  size_t n;
  std::memcpy(&n, block, sizeof n);
  static_cast<ZStream*>(opaque)->bytes -= n;
  std::free(block);
}

ZStream* new_stream() noexcept {
  auto* s = new (std::nothrow) ZStream;
  if (s == nullptr) return nullptr;
  s->z.zalloc = counting_alloc;
  s->z.zfree = counting_free;
  s->z.opaque = s;
  return s;
}

}  // namespace

void DeflateStreamDeleter::operator()(ZStream* s) const noexcept {
  deflateEnd(&s->z);
  delete s;
}

void InflateStreamDeleter::operator()(ZStream* s) const noexcept {
  inflateEnd(&s->z);
  delete s;
}

}  // namespace detail

namespace {

// zlib counts in uInt; larger buffers go through it in slices.
constexpr size_t kMaxZlibSlice = size_t{1} << 30;

// RFC 7692 §7.2.1-§7.2.2: the empty stored block a sync flush ends with,
// removed by the sender and appended again by the receiver.
constexpr uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};

// zlib refuses a raw deflate window of 8 bits; see DeflaterConfig.
int zlib_deflate_bits(int bits) noexcept {
  return std::max(clamp_bits(bits), 9);
}

// Makes room for `need` bytes in `out` without letting its capacity pass
// `cap` (need <= cap). std::string::reserve() may double the capacity,
// which could cross the limit, so the growth step is chosen here and the
// string is allocated at exactly that size.
void reserve_bounded(std::string& out, size_t need, size_t cap) {
  if (out.capacity() >= need) return;
  const size_t target = std::min(std::max(need, 2 * out.capacity()), cap);
  std::string grown;
  grown.reserve(target);  // from an empty string: exactly `target` (or the 30-byte minimum)
  grown.append(out);
  out.swap(grown);
}

}  // namespace

// --- Deflater ----------------------------------------------------------------

DeflaterConfig deflater_config(const DeflateParams& params, const DeflatePolicy& policy) noexcept {
  DeflaterConfig c;
  c.window_bits = params.server_max_window_bits;
  c.mem_level = policy.mem_level;
  c.level = policy.level;
  c.no_context_takeover = params.server_no_context_takeover;
  return c;
}

Deflater::Deflater(DeflaterConfig config) noexcept : config_(config) {
  config_.window_bits = clamp_bits(config_.window_bits);
  config_.mem_level = std::clamp(config_.mem_level, 1, 9);
  config_.level = std::clamp(config_.level, 0, 9);
}

DeflateError Deflater::compress(const uint8_t* data, size_t len, std::string& out) {
  // §7.2.3.6: an empty message is the single octet 0x00, an empty stored
  // block without its 4-byte tail. zlib is not involved: an empty message
  // adds nothing to the window, and a second sync flush in a row would
  // produce no marker at all.
  if (len == 0) {
    out.push_back('\0');
    return DeflateError::none;
  }
  if (!stream_) {
    stream_.reset(detail::new_stream());
    if (!stream_) return DeflateError::out_of_memory;
    if (deflateInit2(&stream_->z, config_.level, Z_DEFLATED, -zlib_deflate_bits(config_.window_bits),
                     config_.mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
      // deflateInit2 freed what it had allocated; the stream was never live.
      delete stream_.release();
      return DeflateError::out_of_memory;
    }
    dirty_ = false;
  } else if (config_.no_context_takeover && dirty_) {
    // §7.1.1.1: with server_no_context_takeover every message starts from
    // an empty window.
    deflateReset(&stream_->z);
    dirty_ = false;
  }
  z_stream& z = stream_->z;
  dirty_ = true;

  const size_t start = out.size();
  // deflateBound() covers a complete stream; the sync flush adds at most
  // an empty stored block (5 bytes) and a partial byte.
  out.resize(start + deflateBound(&z, static_cast<uLong>(std::min(len, kMaxZlibSlice))) + 8);
  size_t written = 0;
  const uint8_t* in = data;
  size_t in_left = len;
  for (;;) {
    if (z.avail_in == 0 && in_left > 0) {
      const size_t slice = std::min(in_left, kMaxZlibSlice);
      z.next_in = const_cast<Bytef*>(in);
      z.avail_in = static_cast<uInt>(slice);
      in += slice;
      in_left -= slice;
    }
    // §7.2.1: the message ends with a sync flush, which leaves the output
    // byte-aligned and ending in 0x00 0x00 0xff 0xff.
    const int flush = in_left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    if (out.size() - start == written) out.resize(out.size() + std::max<size_t>(written, 64));
    const size_t room = std::min(out.size() - start - written, kMaxZlibSlice);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + start + written);
    z.avail_out = static_cast<uInt>(room);
    const int ret = deflate(&z, flush);
    written += room - z.avail_out;
    if (ret != Z_OK && ret != Z_BUF_ERROR) {
      out.resize(start);
      release();
      return DeflateError::internal;
    }
    // Done once the flush has fully fitted: zlib asks to be called again
    // only while it fills the whole output buffer.
    if (flush == Z_SYNC_FLUSH && (z.avail_out != 0 || ret == Z_BUF_ERROR)) break;
  }
  // §7.2.1: remove the 4-octet tail of the trailing empty stored block.
  if (written < sizeof kTail ||
      std::memcmp(out.data() + start + written - sizeof kTail, kTail, sizeof kTail) != 0) {
    out.resize(start);
    release();
    return DeflateError::internal;
  }
  out.resize(start + written - sizeof kTail);
  return DeflateError::none;
}

void Deflater::release() noexcept {
  stream_.reset();
  dirty_ = false;
}

size_t Deflater::memory() const noexcept {
  return stream_ ? stream_->bytes : 0;
}

// --- Inflater ----------------------------------------------------------------

InflaterConfig inflater_config(const DeflateParams& params, uint64_t max_message_size) noexcept {
  InflaterConfig c;
  c.window_bits = params.client_max_window_bits;
  c.no_context_takeover = params.client_no_context_takeover;
  c.max_message_size = max_message_size;
  return c;
}

Inflater::Inflater(InflaterConfig config) noexcept : config_(config) {
  // Raw inflate accepts 8..15; a larger window than the peer's is always
  // safe, a smaller one never.
  config_.window_bits = clamp_bits(config_.window_bits);
}

InflateError Inflater::begin_message() noexcept {
  if (!stream_) {
    stream_.reset(detail::new_stream());
    if (!stream_) return fail(InflateError::out_of_memory);
    if (inflateInit2(&stream_->z, -config_.window_bits) != Z_OK) {
      delete stream_.release();
      return fail(InflateError::out_of_memory);
    }
    dirty_ = false;
  } else if (config_.no_context_takeover && dirty_) {
    // §7.1.1.2: the client starts every message from an empty window.
    inflateReset(&stream_->z);
    dirty_ = false;
  }
  produced_ = 0;
  ended_ = false;
  in_message_ = true;
  dirty_ = true;
  return InflateError::none;
}

InflateError Inflater::feed(const uint8_t* data, size_t len, std::string& out) {
  if (error_ != InflateError::none) return error_;
  if (!in_message_) {
    // An empty piece starts nothing, so a payload made only of empty
    // frames still counts as empty in finish().
    if (len == 0) return InflateError::none;
    if (const InflateError e = begin_message(); e != InflateError::none) return e;
  }
  while (len > 0) {
    const size_t slice = std::min(len, kMaxZlibSlice);
    if (const InflateError e = run(data, slice, out, false); e != InflateError::none) return e;
    data += slice;
    len -= slice;
  }
  return InflateError::none;
}

InflateError Inflater::finish(std::string& out) {
  if (error_ != InflateError::none) return error_;
  // An empty payload is an empty message. Valid senders never produce one
  // (§7.2.3.6: the empty message is 0x00), but ws and websockets accept
  // it; the stream is left untouched, as appending the tail to nothing
  // would leave it inside a stored block's header.
  if (!in_message_) return InflateError::none;
  in_message_ = false;
  // A sender that ended the message with a final block (zlib's Z_FINISH)
  // and sent nothing after it has been read in full; the tail would only
  // begin a new block. ws and websockets accept such messages too.
  if (ended_) return InflateError::none;
  // §7.2.2: append 0x00 0x00 0xff 0xff and inflate.
  if (const InflateError e = run(kTail, sizeof kTail, out, true); e != InflateError::none) return e;
  if (ended_) return InflateError::none;
  // With the tail the data must stop at a block boundary: the tail is the
  // rest of the empty stored block the sender's flush produced (§7.2.1).
  // Anything else (a truncated block, a sender that never flushed) would
  // leave the next message to start in the middle of a block.
  const int type = stream_->z.data_type;
  if ((type & 128) == 0 || (type & 63) != 0) return fail(InflateError::corrupt);
  return InflateError::none;
}

// §7.2.1 lets a sender end a block with BFINAL set, and "the next DEFLATE
// block follows the padded data" (§7.2.3.4). zlib stops at a final block
// (RFC 1951 §3.2.3: the last block of the data set), so the stream is
// restarted there with an empty window. That is how the senders that emit
// final blocks work: zlib's deflate must be reset after Z_FINISH, emptying
// its window, so nothing after a final block refers to what came before.
// Carrying the window over instead would cost a copy of up to 32 KiB per
// final block, and a final block can be 2 bytes long.
void Inflater::restart_stream() noexcept {
  inflateReset(&stream_->z);
}

InflateError Inflater::run(const uint8_t* data, size_t len, std::string& out, bool tail) {
  z_stream& z = stream_->z;
  if (!tail && len > 0) ended_ = false;  // more data after a final block: blocks follow (§7.2.1)
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(len);
  // Output steps start near the expected size and double while zlib fills
  // them, so a small message does not zero or allocate a large buffer.
  constexpr size_t kMinStep = 256;
  constexpr size_t kMaxStep = size_t{1} << 20;
  size_t step = std::clamp(len * 4, kMinStep, kMaxStep);
  for (;;) {
    const uint64_t room = config_.max_message_size - produced_;
    int ret;
    if (room == 0) {
      // At the limit: one byte of scratch space tells whether the message
      // has more to give, without storing it.
      Bytef probe;
      z.next_out = &probe;
      z.avail_out = 1;
      ret = inflate(&z, Z_SYNC_FLUSH);
      if (z.avail_out == 0) return fail(InflateError::too_big);
    } else {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(step, room));
      const size_t old = out.size();
      reserve_bounded(out, old + want, old + static_cast<size_t>(std::min<uint64_t>(room, SIZE_MAX - old)));
      out.resize(old + want);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      z.avail_out = static_cast<uInt>(want);
      ret = inflate(&z, Z_SYNC_FLUSH);
      const size_t got = want - z.avail_out;
      out.resize(old + got);
      produced_ += got;
      if (z.avail_out == 0) step = std::min(step * 2, kMaxStep);
    }
    switch (ret) {
      case Z_OK:
      case Z_BUF_ERROR:  // no progress possible: the input is used up
        break;
      case Z_STREAM_END:
        restart_stream();
        // A final block that ends the data (or ends inside the tail, whose
        // rest is then padding) completes the message.
        if (tail || z.avail_in == 0) {
          ended_ = true;
          return InflateError::none;
        }
        continue;
      case Z_MEM_ERROR: return fail(InflateError::out_of_memory);
      default:  // Z_DATA_ERROR; Z_NEED_DICT cannot happen in raw mode
        return fail(InflateError::corrupt);
    }
    // zlib returns with output space left only once it has used all the
    // input it can; a full buffer may hide more output.
    if (z.avail_out != 0 || ret == Z_BUF_ERROR) return InflateError::none;
  }
}

bool Inflater::release() noexcept {
  if (in_message_) return false;
  if (!config_.no_context_takeover && dirty_) return false;
  stream_.reset();
  dirty_ = false;
  return true;
}

size_t Inflater::memory() const noexcept {
  return stream_ ? stream_->bytes : 0;
}

}  // namespace windlass::proto
