// TlsContext: the server's TLS configuration — certificate chain, private
// key, protocol versions, ciphers, ALPN — as one OpenSSL SSL_CTX that every
// connection (TlsSession) is created from.
//
// Reload without dropping connections: reload() builds a complete new
// SSL_CTX from the files and only then swaps it in. New sessions take the
// new one; a session already open keeps the SSL_CTX it was created from,
// because SSL_new() takes a reference on it (OpenSSL's own reference count),
// so the old context is freed when its last connection ends. A reload that
// fails — missing file, bad PEM, a key that does not match the certificate
// (e.g. a renewal tool that has written one file but not yet the other) —
// throws and leaves the serving context as it was.
//
// Policy, fixed here so every deployment gets the same answers:
//   - TLS 1.2 and 1.3 (min_version may raise the floor to 1.3); nothing older.
//   - TLS 1.2 ciphers: ECDHE with AES-GCM or ChaCha20-Poly1305 only (forward
//     secret AEADs); TLS 1.3 suites are OpenSSL's defaults, all AEADs.
//     The server's order wins, except that a client that prefers ChaCha20
//     (typically a phone without AES instructions) gets it.
//   - ALPN (RFC 7301): "http/1.1" is selected when offered; a client that
//     sends no ALPN is accepted; a client that offers only other protocols
//     (e.g. only "h2") gets the fatal no_application_protocol alert that
//     RFC 7301 §3.2 requires, since we cannot speak what it asked for.
//   - Session tickets on (stateless resumption: RFC 8446 §4.6.1, RFC 5077);
//     the server-side session cache off, so resumption costs no memory per
//     client and works the same on every loop. Ticket keys belong to the
//     SSL_CTX, so a reload also rotates them (clients do one full handshake).
//   - No compression (CRIME; RFC 8446 §4.1.2 allows only null compression),
//     no renegotiation (TLS 1.2's renegotiation is a CPU-exhaustion and
//     injection surface; TLS 1.3 has none), no 0-RTT early data (replayable,
//     RFC 8446 §8).
//   - Buffers released when idle (SSL_MODE_RELEASE_BUFFERS): an idle
//     connection holds no 16 KiB record buffers (see TlsSession for sizes).
//   - An encrypted private key is refused rather than prompted for: a server
//     that waits on a terminal for a passphrase never starts under systemd.
//
// Thread safety: current() and reload() may be called from any thread at
// any time (the SSL_CTX is held in an std::atomic<std::shared_ptr>), so one
// TlsContext serves every loop.
#pragma once

#include <openssl/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace windlass::tls {

enum class TlsVersion : uint8_t { tls1_2, tls1_3 };

struct TlsConfig {
  std::string certificate_chain_file;  // PEM: the server certificate first, then its intermediates
  std::string private_key_file;        // PEM, not encrypted
  TlsVersion min_version = TlsVersion::tls1_2;
};

class TlsContext {
 public:
  // Loads the files. Throws std::runtime_error naming the file and
  // OpenSSL's error, e.g. "tls: cannot load certificate chain /etc/x.pem:
  // error:80000002:system library::No such file or directory".
  explicit TlsContext(TlsConfig config);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Re-reads the files named in the config into a new SSL_CTX and makes it
  // the one new sessions use. Throws std::runtime_error (as the constructor)
  // and keeps the current context if anything fails.
  void reload();

  // The context new sessions are created from.
  std::shared_ptr<SSL_CTX> current() const noexcept { return ctx_.load(std::memory_order_acquire); }

  // How many contexts have been loaded: 1 after construction, +1 per
  // successful reload (for logs: "tls: certificates reloaded (generation 3)").
  uint64_t generation() const noexcept { return generation_.load(std::memory_order_relaxed); }

  const TlsConfig& config() const noexcept { return config_; }

 private:
  const TlsConfig config_;
  std::atomic<std::shared_ptr<SSL_CTX>> ctx_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace windlass::tls
