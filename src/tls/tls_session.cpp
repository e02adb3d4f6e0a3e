#include "tls/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

namespace windlass::tls {
namespace {

// The most plaintext one record carries (RFC 8446 §5.1), so one SSL_read
// into a buffer this size always takes a whole record.
constexpr size_t kMaxRecordPlaintext = SSL3_RT_MAX_PLAIN_LENGTH;
// Bytes a record adds around its plaintext, rounded up: a 5-byte header,
// then a 16-byte AEAD tag and TLS 1.3's content type or TLS 1.2 GCM's
// 8-byte explicit nonce. Only used to size the output once.
constexpr size_t kMaxRecordOverhead = 32;

}  // namespace

// The BIO under every session: reads come from the span the caller passed
// to feed_ciphertext, writes append to the caller's string (or to pending_
// while reading). Between calls it holds nothing.
struct SessionBio {
  static int read(BIO* bio, char* buf, size_t len, size_t* read_bytes) {
    auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (s->in_len_ == 0) {
      // No more input in this call: OpenSSL keeps a partial record in its
      // own buffer and reports WANT_READ.
      BIO_set_retry_read(bio);
      *read_bytes = 0;
      return 0;
    }
    const size_t n = std::min(len, s->in_len_);
    std::memcpy(buf, s->in_, n);
    s->in_ += n;
    s->in_len_ -= n;
    *read_bytes = n;
    return 1;
  }

  static int write(BIO* bio, const char* buf, size_t len, size_t* written) {
    auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    (s->sink_ != nullptr ? *s->sink_ : s->pending_).append(buf, len);
    *written = len;
    return 1;
  }

  static long ctrl(BIO*, int cmd, long, void*) {
    // Writes are complete when write() returns; every other control
    // (pending counts, EOF, kTLS offload) has the neutral answer 0.
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
  }

  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static const BIO_METHOD* method() {
    // Built once per process; thread-safe as a function-local static.
    static const std::unique_ptr<BIO_METHOD, decltype(&BIO_meth_free)> m(make_method(), BIO_meth_free);
    return m.get();
  }

  static BIO_METHOD* make_method() {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "windlass session");
    if (m == nullptr) return nullptr;
    BIO_meth_set_read_ex(m, read);
    BIO_meth_set_write_ex(m, write);
    BIO_meth_set_ctrl(m, ctrl);
    BIO_meth_set_create(m, create);
    return m;
  }

  // Points the BIO at this call's input and output, and forgets them on
  // return: the spans are the caller's and die with the call. Also starts
  // the call with an empty error queue, which is per thread and shared by
  // every session of the loop, so a stale error is never blamed on us.
  class Scope {
   public:
    Scope(TlsSession& s, const uint8_t* in, size_t in_len, std::string* sink) : s_(s) {
      s.in_ = in;
      s.in_len_ = in_len;
      s.sink_ = sink;
      ERR_clear_error();
    }
    ~Scope() {
      s_.in_ = nullptr;
      s_.in_len_ = 0;
      s_.sink_ = nullptr;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    TlsSession& s_;
  };
};

const char* describe(TlsError e) noexcept {
  switch (e) {
    case TlsError::none: return "no error";
    case TlsError::plain_http: return "plain HTTP on a TLS port";
    case TlsError::handshake_failed: return "TLS handshake refused";
    case TlsError::peer_alert: return "peer aborted TLS with an alert";
    case TlsError::protocol_error: return "TLS protocol error";
    case TlsError::internal: return "TLS internal error";
  }
  return "unknown TLS error";
}

TlsSession::TlsSession(const TlsContext& context) {
  // SSL_new takes its own reference on the SSL_CTX: this session keeps the
  // context it started with alive across a reload.
  const std::shared_ptr<SSL_CTX> ctx = context.current();
  ssl_ = SSL_new(ctx.get());
  BIO* bio = ssl_ != nullptr ? BIO_new(SessionBio::method()) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);
}

Result TlsSession::feed_ciphertext(const uint8_t* data, size_t len, std::string& plaintext_out) {
  if (state_ == State::closed) return Result::closed;
  if (state_ == State::failed) return Result::error;
  SessionBio::Scope scope(*this, data, len, nullptr);

  if (state_ == State::handshaking) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      switch (SSL_get_error(ssl_, r)) {
        case SSL_ERROR_WANT_READ: return Result::ok;
        case SSL_ERROR_ZERO_RETURN: state_ = State::closed; return Result::closed;
        default: return fail(r);
      }
    }
    state_ = State::open;
    handshake_completed_ = true;
  }

  // One record per SSL_read, until the input is used up. A record split
  // across calls waits in OpenSSL's buffer; SSL_has_pending() says so.
  while (in_len_ > 0 || SSL_has_pending(ssl_) == 1) {
    const size_t old = plaintext_out.size();
    plaintext_out.resize(old + kMaxRecordPlaintext);
    size_t n = 0;
    const int r = SSL_read_ex(ssl_, plaintext_out.data() + old, kMaxRecordPlaintext, &n);
    plaintext_out.resize(old + n);
    if (r == 1) continue;
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ: return Result::ok;
      case SSL_ERROR_ZERO_RETURN:
        // close_notify: whatever follows it is ignored (RFC 8446 §6.1).
        state_ = State::closed;
        return Result::closed;
      default: return fail(r);
    }
  }
  return Result::ok;
}

bool TlsSession::encrypt(const uint8_t* data, size_t len, std::string& ciphertext_out) {
  if (state_ != State::open || sent_close_notify_) return false;
  take_pending_ciphertext(ciphertext_out);
  if (len == 0) return true;
  ciphertext_out.reserve(ciphertext_out.size() + len + (len / kMaxRecordPlaintext + 1) * kMaxRecordOverhead);
  SessionBio::Scope scope(*this, nullptr, 0, &ciphertext_out);
  // Our BIO never refuses a write, so SSL_write_ex takes everything at once,
  // cut into records of at most 16 KiB.
  size_t written = 0;
  const int r = SSL_write_ex(ssl_, data, len, &written);
  if (r != 1) {
    fail(r);
    return false;
  }
  return true;
}

void TlsSession::take_pending_ciphertext(std::string& out) {
  if (pending_.empty()) return;
  out.append(pending_);
  // Pending bytes are rare after the handshake (tickets, KeyUpdate, alerts):
  // give the memory back instead of keeping a few KiB per connection.
  std::string().swap(pending_);
}

void TlsSession::close_notify(std::string& out) {
  // After an error OpenSSL has already sent its alert, and RFC 8446 §6.2
  // closes the connection with it; before the handshake there is no
  // protected channel to close.
  if (!handshake_completed_ || state_ == State::failed || sent_close_notify_) return;
  take_pending_ciphertext(out);
  SessionBio::Scope scope(*this, nullptr, 0, &out);
  // Returns 0 (ours sent, the peer's not yet received) or 1 (both done);
  // we do not wait for the peer's: the socket's lingering close does.
  SSL_shutdown(ssl_);
  ERR_clear_error();
  sent_close_notify_ = true;
}

Result TlsSession::fail(int ssl_result) {
  const int kind = SSL_get_error(ssl_, ssl_result);
  // Classify by the first error OpenSSL's own SSL library raised (others in
  // the queue, e.g. from the cipher, are the means, not the reason).
  unsigned long code = 0;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    if (code == 0 || (ERR_GET_LIB(code) != ERR_LIB_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL)) code = e;
  }
  error_code_ = code;
  const int reason = ERR_GET_REASON(code);
  if (kind != SSL_ERROR_SSL || code == 0 || reason == ERR_R_MALLOC_FAILURE) {
    error_ = TlsError::internal;
  } else if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
             (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST)) {
    // OpenSSL recognises "GET ", "POST ", "HEAD ", "PUT " and "CONNECT" in
    // place of the first record header. No alert is sent, so the layer
    // above may answer in plain HTTP.
    error_ = TlsError::plain_http;
  } else if (ERR_GET_LIB(code) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET) {
    // OpenSSL reports a received alert as its description plus this offset.
    error_ = TlsError::peer_alert;
  } else {
    error_ = handshake_completed_ ? TlsError::protocol_error : TlsError::handshake_failed;
  }
  state_ = State::failed;
  return Result::error;
}

bool TlsSession::resumed() const noexcept {
  return SSL_session_reused(ssl_) == 1;
}

std::string_view TlsSession::alpn() const noexcept {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return p != nullptr ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view();
}

std::string_view TlsSession::version() const noexcept {
  return handshake_completed_ ? std::string_view(SSL_get_version(ssl_)) : std::string_view();
}

std::string_view TlsSession::cipher() const noexcept {
  return handshake_completed_ ? std::string_view(SSL_get_cipher_name(ssl_)) : std::string_view();
}

std::string TlsSession::error_detail() const {
  if (error_code_ == 0) return {};
  char buf[256];
  ERR_error_string_n(error_code_, buf, sizeof buf);
  return buf;
}

}  // namespace windlass::tls
