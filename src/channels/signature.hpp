// Pusher signatures: hex HMAC-SHA256 and MD5 through OpenSSL, the strings
// each kind of authorization signs, constant-time verification of a client's
// `auth` field, and socket_id validation. Pure: no I/O, no clock, no global.
//
// What is signed (Pusher Channels protocol 7, "auth signatures"):
//   private and private-encrypted channels   socket_id ":" channel
//   presence channels                        socket_id ":" channel ":" channel_data
//   user sign-in (pusher:signin)             socket_id "::user::" user_data
//   webhooks                                 the request body
// channel_data and user_data are the exact strings the client sent (the
// JSON string values, unescaped), never a re-encoding of them. A client's
// `auth` is "<app key>:<64 hex digits>".
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "channels/channel_name.hpp"

namespace windlass::channels {

inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kSha256HexLength = 64;
inline constexpr size_t kMd5HexLength = 32;

// Lower-case hex digests held by value: no allocation.
struct Sha256Hex {
  char text[kSha256HexLength] = {};
  std::string_view view() const noexcept { return {text, kSha256HexLength}; }
};
struct Md5Hex {
  char text[kMd5HexLength] = {};
  std::string_view view() const noexcept { return {text, kMd5HexLength}; }
};

// One-shot hex HMAC-SHA256 of `message` under `key`. For many signatures
// under one secret, AppSigner prepares the key once and is faster. Returns
// false only if OpenSSL fails (out of memory), leaving `out` zeroed.
bool hmac_sha256_hex(std::string_view key, std::string_view message, Sha256Hex& out) noexcept;
// Hex MD5 of `data` (the API's body_md5).
bool md5_hex(std::string_view data, Md5Hex& out) noexcept;

// The same with the digest fetched from OpenSSL's provider once and a
// context kept: md5_hex's implicit fetch costs more than hashing a typical
// API body. Not thread-safe: keep one per loop.
class Md5Hasher {
 public:
  Md5Hasher() noexcept;
  ~Md5Hasher();
  Md5Hasher(const Md5Hasher&) = delete;
  Md5Hasher& operator=(const Md5Hasher&) = delete;
  bool hex(std::string_view data, Md5Hex& out) noexcept;

 private:
  EVP_MD* md_ = nullptr;
  EVP_MD_CTX* ctx_ = nullptr;
};
// Compares equal-length secrets without a data-dependent early exit
// (CRYPTO_memcmp). Lengths are not secret: different lengths are unequal.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
// Decodes exactly 64 hex digits (either case) into 32 bytes; false when
// `hex` is anything else.
bool decode_sha256_hex(std::string_view hex, uint8_t out[kSha256Size]) noexcept;

// The strings to sign, appended to `out` (for SDK-side code, tests and logs;
// verification streams the same pieces into the MAC without building them).
void append_private_string_to_sign(std::string& out, std::string_view socket_id, std::string_view channel);
void append_presence_string_to_sign(std::string& out, std::string_view socket_id, std::string_view channel,
                                    std::string_view channel_data);
void append_user_string_to_sign(std::string& out, std::string_view socket_id, std::string_view user_data);

// socket_id must match \A\d+\.\d+\z (pusher-http-php refuses anything else,
// so an id it cannot accept is never handed out or believed). Each part is
// at most 20 digits, enough for any 64-bit number.
inline constexpr size_t kMaxSocketIdPart = 20;
inline constexpr size_t kMaxSocketIdLength = 2 * kMaxSocketIdPart + 1;

enum class SocketIdError : uint8_t {
  none,
  empty,
  too_long,   // over 41 characters, or a part over 20 digits
  malformed,  // not digits "." digits
};
const char* describe(SocketIdError e) noexcept;
SocketIdError validate_socket_id(std::string_view socket_id) noexcept;

enum class AuthError : uint8_t {
  none,
  missing,              // empty auth on a channel that needs one
  malformed,            // no ':' between key and signature
  wrong_key,            // the key part is not this app's key
  malformed_signature,  // the signature part is not 64 hex digits
  wrong_signature,      // well-formed, but not the signature of this string
  crypto_failure,       // OpenSSL could not compute the MAC (out of memory)
};
const char* describe(AuthError e) noexcept;
// The pusher:error code a failed subscription or sign-in is answered with:
// 4009, "connection is unauthorized".
inline constexpr uint16_t kUnauthorizedCode = 4009;

// An app's key and secret, with the secret's HMAC key schedule prepared
// once, so each signature costs one reinitialisation and the hashing.
// Not thread-safe (it reuses one OpenSSL context): keep one per loop.
class AppSigner {
 public:
  AppSigner(std::string_view key, std::string_view secret);
  ~AppSigner();
  AppSigner(const AppSigner&) = delete;
  AppSigner& operator=(const AppSigner&) = delete;
  AppSigner(AppSigner&& other) noexcept;
  AppSigner& operator=(AppSigner&& other) noexcept;

  // False when OpenSSL could not set up the MAC; every signature then fails
  // and every verification returns AuthError::crypto_failure.
  bool ok() const noexcept { return ctx_ != nullptr; }
  std::string_view key() const noexcept { return key_; }

  // The MAC of the concatenation of `pieces`. False on an OpenSSL failure.
  bool mac(std::initializer_list<std::string_view> pieces, uint8_t out[kSha256Size]) noexcept;
  bool sign(std::initializer_list<std::string_view> pieces, Sha256Hex& out) noexcept;

  bool sign_private(std::string_view socket_id, std::string_view channel, Sha256Hex& out) noexcept;
  bool sign_presence(std::string_view socket_id, std::string_view channel, std::string_view channel_data,
                     Sha256Hex& out) noexcept;
  bool sign_user(std::string_view socket_id, std::string_view user_data, Sha256Hex& out) noexcept;
  // X-Pusher-Signature of a webhook body.
  bool sign_webhook(std::string_view body, Sha256Hex& out) noexcept;

  // Verifies a client's "<key>:<hexsig>". The key part is compared first (it
  // is public); the signature in constant time. private and
  // private-encrypted channels sign socket_id:channel, presence channels
  // add ":" channel_data; public channels need nothing and return none.
  AuthError verify_channel(ChannelType type, std::string_view auth, std::string_view socket_id,
                           std::string_view channel, std::string_view channel_data) noexcept;
  AuthError verify_private(std::string_view auth, std::string_view socket_id,
                           std::string_view channel) noexcept;
  AuthError verify_presence(std::string_view auth, std::string_view socket_id, std::string_view channel,
                            std::string_view channel_data) noexcept;
  AuthError verify_user(std::string_view auth, std::string_view socket_id,
                        std::string_view user_data) noexcept;
  // Verifies a bare hex signature (the HTTP API's auth_signature).
  AuthError verify_hex(std::string_view hex, std::initializer_list<std::string_view> pieces) noexcept;

 private:
  AuthError verify(std::string_view auth, std::initializer_list<std::string_view> pieces) noexcept;

  std::string key_;
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
};

}  // namespace windlass::channels
