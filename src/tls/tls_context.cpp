#include "tls/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <string_view>
#include <utility>

namespace windlass::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 list without the DHE suites: ECDHE key
// exchange (forward secrecy) with an AEAD cipher, for ECDSA or RSA keys.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr std::string_view kHttp11 = "http/1.1";

// OpenSSL's oldest queued error — the root cause; the later ones only say
// which caller passed it on — leaving the queue empty so nothing stale is
// blamed on a later call.
std::string drain_errors() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("tls: " + what + ": " + drain_errors());
}

// RFC 7301 §3.2: the server picks one protocol from the client's list, or
// answers no_application_protocol when it supports none of them. Clients
// that send no ALPN extension never reach this callback and are accepted.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  // The list is a sequence of length-prefixed names (RFC 7301 §3.1);
  // OpenSSL has checked it is well formed.
  for (unsigned int i = 0; i < in_len;) {
    const unsigned int n = in[i];
    if (n == 0 || i + 1 + n > in_len) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == kHttp11) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Called when a PEM file is encrypted: returning 0 makes the load fail
// instead of OpenSSL's default of prompting on the terminal.
int refuse_passphrase(char*, int, int, void*) {
  return 0;
}

std::shared_ptr<SSL_CTX> build(const TlsConfig& config) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> owner(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  SSL_CTX* ctx = owner.get();
  if (ctx == nullptr) fail("cannot create a context");

  const int min = config.min_version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    fail("cannot set the protocol versions");
  }
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                               SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) fail("cannot set the TLS 1.2 ciphers");
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  SSL_CTX_set_default_passwd_cb(ctx, refuse_passphrase);

  if (SSL_CTX_use_certificate_chain_file(ctx, config.certificate_chain_file.c_str()) != 1) {
    fail("cannot load certificate chain " + config.certificate_chain_file);
  }
  const std::string mismatch = "private key " + config.private_key_file + " does not match certificate " +
                               config.certificate_chain_file;
  if (SSL_CTX_use_PrivateKey_file(ctx, config.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // Loading a key checks it against the certificate of its type: the
    // usual sign of a renewal caught half-way.
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) fail(mismatch);
    fail("cannot load private key " + config.private_key_file);
  }
  // A key of another type (an EC key for an RSA certificate) loads into a
  // slot of its own; this catches it.
  if (SSL_CTX_check_private_key(ctx) != 1) fail(mismatch);
  return owner;
}

}  // namespace

TlsContext::TlsContext(TlsConfig config) : config_(std::move(config)), ctx_(build(config_)), generation_(1) {}

void TlsContext::reload() {
  // Built completely before the swap: a failure throws from build() and
  // leaves ctx_ untouched.
  ctx_.store(build(config_), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace windlass::tls
