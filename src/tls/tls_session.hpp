// TlsSession: the TLS side of one server connection, as a pure transform
// between the bytes the socket reads and writes (ciphertext) and the bytes
// the HTTP/WebSocket handler sees (plaintext). It does no I/O and knows no
// socket, clock or logger, so it is tested by running a real OpenSSL client
// against it in memory.
//
// Why a transform over memory instead of SSL_set_fd: the loop owns the fd,
// reads into one receive buffer shared by every socket of the loop, and
// sends through the socket's write queue. Handing OpenSSL the fd would give
// it its own reads and writes, with WANT_READ/WANT_WRITE states to juggle
// inside the I/O layer (a write that must be retried from the read path and
// the reverse). As a transform, ciphertext to send goes into the same write
// queue as plain bytes would, so backpressure, the send-queue limit and the
// one-writev-per-turn flush apply unchanged; the cost is one copy of the
// ciphertext, small next to the cipher itself.
//
// The memory BIO is our own, not BIO_s_mem: its read side hands OpenSSL
// the caller's input span, its write side appends to the caller's string.
// BIO_s_mem keeps the largest buffer it ever held for the life of the
// connection (measured: 683 KiB stay allocated after it carried one
// 512 KiB read) and adds a copy each way; ours holds nothing between
// calls. A partial record waits in OpenSSL's own record buffer, which
// SSL_MODE_RELEASE_BUFFERS frees once it is used.
//
// Memory, measured (tls_session_test: holds_little_memory_per_session,
// counting every OpenSSL allocation): an established TLS 1.3 session holds
// 13.6 KiB of OpenSSL heap, the same idle or after 1 MiB each way; TLS 1.2
// about 12.5 KiB. 7.4 KiB of it is OpenSSL's SSL object itself, 1.9 KiB
// the two AES-GCM states, 0.9 KiB the SSL_SESSION; the rest is the
// certificate slot copy, transcript hash and small structures. Add
// sizeof(TlsSession), 80 bytes. While a record is incomplete OpenSSL holds
// a 16.3 KiB read buffer, released when the record completes.
//
// Plaintext is bounded by the input: one feed_ciphertext() of n bytes
// yields at most n bytes plus one record (16 KiB) that an earlier call
// left incomplete.
//
// Thread safety: none; a session lives on its connection's loop. Any
// number of sessions may share a TlsContext across threads.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tls/tls_context.hpp"

namespace windlass::tls {

enum class TlsError : uint8_t {
  none,
  plain_http,        // a plain HTTP request arrived on the TLS port (OpenSSL's SSL_R_HTTP_REQUEST)
  handshake_failed,  // we refused the handshake: no shared version, cipher or ALPN protocol; malformed hello
  peer_alert,        // the peer aborted with a fatal alert, e.g. it does not trust our certificate
  protocol_error,    // after the handshake: a record that fails to decrypt or breaks the protocol
  internal,          // OpenSSL failed in a way the peer did not cause (out of memory)
};

// A fixed description for logs ("plain HTTP on a TLS port").
const char* describe(TlsError e) noexcept;

enum class Result : uint8_t {
  ok,      // all input consumed; plaintext (if any) appended
  closed,  // the peer sent close_notify; input after it is ignored (RFC 8446 §6.1)
  error,   // see error() and error_detail(); the connection must close
};

class TlsSession {
 public:
  // A server-side session on context.current(). Throws std::bad_alloc if
  // OpenSSL cannot allocate it.
  explicit TlsSession(const TlsContext& context);
  ~TlsSession();
  // The BIO refers to the session by address, so it stays put.
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Bytes read from the socket. Drives the handshake, then appends the
  // application data they complete to `plaintext_out`. Afterwards call
  // take_pending_ciphertext(): the handshake, session tickets or an alert
  // may be waiting to be sent — including after Result::error, when the
  // alert tells the peer why (RFC 8446 §6.2).
  // Once Result::closed or Result::error, every later call returns the same.
  Result feed_ciphertext(const uint8_t* data, size_t len, std::string& plaintext_out);

  // Encrypts application bytes, appending the records to `ciphertext_out`,
  // preceded by any pending ciphertext, so the bytes go out in the order
  // TLS produced them. False (and nothing appended) before the handshake is
  // done, after close_notify was sent or received, or after an error.
  bool encrypt(const uint8_t* data, size_t len, std::string& ciphertext_out);

  // Moves the bytes OpenSSL produced while reading (see feed_ciphertext)
  // to the end of `out`.
  void take_pending_ciphertext(std::string& out);

  // Appends the close_notify alert (RFC 8446 §6.1), preceded by pending
  // ciphertext: we will send nothing more. Reading stays possible, so the
  // peer's last bytes still arrive. Appends nothing before the handshake
  // is done, after an error, or the second time.
  void close_notify(std::string& out);

  bool handshake_done() const noexcept { return handshake_completed_; }
  // Was the handshake an abbreviated one, resuming a session from a ticket?
  bool resumed() const noexcept;
  // The ALPN protocol selected ("http/1.1"), or empty if the client sent no ALPN.
  std::string_view alpn() const noexcept;
  // "TLSv1.3" or "TLSv1.2"; empty before the handshake is done.
  std::string_view version() const noexcept;
  // OpenSSL's cipher name ("TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256");
  // empty before the handshake is done.
  std::string_view cipher() const noexcept;

  TlsError error() const noexcept { return error_; }
  // OpenSSL's error for logs, e.g. "error:0A00009C:SSL routines::http request";
  // empty if none.
  std::string error_detail() const;

 private:
  friend struct SessionBio;
  // `closed`: the peer's close_notify arrived. `failed`: error_ is set.
  enum class State : uint8_t { handshaking, open, closed, failed };

  Result fail(int ssl_result);

  SSL* ssl_ = nullptr;
  // Valid only during a call: the input the BIO reads from and the string
  // it writes to (pending_ when null).
  const uint8_t* in_ = nullptr;
  size_t in_len_ = 0;
  std::string* sink_ = nullptr;
  std::string pending_;  // ciphertext produced while reading; its memory is released when taken
  unsigned long error_code_ = 0;
  TlsError error_ = TlsError::none;
  State state_ = State::handshaking;
  bool handshake_completed_ = false;
  bool sent_close_notify_ = false;
};

}  // namespace windlass::tls
