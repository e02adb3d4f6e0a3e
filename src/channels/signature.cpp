// HMAC-SHA256, MD5 and auth verification (see signature.hpp). All the
// cryptography is OpenSSL's; this file only feeds it and formats hex.
#include "channels/signature.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <cstring>
#include <utility>

namespace windlass::channels {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void to_hex(const uint8_t* bytes, size_t n, char* out) noexcept {
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[bytes[i] >> 4];
    out[2 * i + 1] = kHexDigits[bytes[i] & 0x0f];
  }
}

// -1 for a byte that is not a hex digit.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// OpenSSL wants a non-null pointer even for an empty buffer.
const unsigned char* bytes_of(std::string_view s) noexcept {
  return s.empty() ? reinterpret_cast<const unsigned char*>("")
                   : reinterpret_cast<const unsigned char*>(s.data());
}

void append_pieces(std::string& out, std::initializer_list<std::string_view> pieces) {
  size_t n = 0;
  for (std::string_view p : pieces) n += p.size();
  out.reserve(out.size() + n);
  for (std::string_view p : pieces) out.append(p);
}

}  // namespace

bool hmac_sha256_hex(std::string_view key, std::string_view message, Sha256Hex& out) noexcept {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (key.size() > static_cast<size_t>(INT32_MAX) ||
      HMAC(EVP_sha256(), bytes_of(key), static_cast<int>(key.size()), bytes_of(message), message.size(), md,
           &len) == nullptr ||
      len != kSha256Size) {
    out = Sha256Hex{};
    return false;
  }
  to_hex(md, kSha256Size, out.text);
  return true;
}

bool md5_hex(std::string_view data, Md5Hex& out) noexcept {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes_of(data), data.size(), md, &len, EVP_md5(), nullptr) != 1 ||
      len * 2 != kMd5HexLength) {
    out = Md5Hex{};
    return false;
  }
  to_hex(md, len, out.text);
  return true;
}

Md5Hasher::Md5Hasher() noexcept {
  md_ = EVP_MD_fetch(nullptr, "MD5", nullptr);
  ctx_ = EVP_MD_CTX_new();
}

Md5Hasher::~Md5Hasher() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(md_);
}

bool Md5Hasher::hex(std::string_view data, Md5Hex& out) noexcept {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (md_ == nullptr || ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md_, nullptr) != 1 ||
      EVP_DigestUpdate(ctx_, bytes_of(data), data.size()) != 1 || EVP_DigestFinal_ex(ctx_, md, &len) != 1 ||
      len * 2 != kMd5HexLength) {
    out = Md5Hex{};
    return false;
  }
  to_hex(md, len, out.text);
  return true;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool decode_sha256_hex(std::string_view hex, uint8_t out[kSha256Size]) noexcept {
  if (hex.size() != kSha256HexLength) return false;
  for (size_t i = 0; i < kSha256Size; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

void append_private_string_to_sign(std::string& out, std::string_view socket_id, std::string_view channel) {
  append_pieces(out, {socket_id, ":", channel});
}

void append_presence_string_to_sign(std::string& out, std::string_view socket_id, std::string_view channel,
                                    std::string_view channel_data) {
  append_pieces(out, {socket_id, ":", channel, ":", channel_data});
}

void append_user_string_to_sign(std::string& out, std::string_view socket_id, std::string_view user_data) {
  append_pieces(out, {socket_id, "::user::", user_data});
}

const char* describe(SocketIdError e) noexcept {
  switch (e) {
    case SocketIdError::none: return "valid socket_id";
    case SocketIdError::empty: return "socket_id is empty";
    case SocketIdError::too_long: return "socket_id is too long";
    case SocketIdError::malformed: return "socket_id is not of the form digits.digits";
  }
  return "invalid socket_id";
}

SocketIdError validate_socket_id(std::string_view id) noexcept {
  if (id.empty()) return SocketIdError::empty;
  if (id.size() > kMaxSocketIdLength) return SocketIdError::too_long;
  size_t i = 0;
  size_t first = 0;
  while (i < id.size() && id[i] >= '0' && id[i] <= '9') ++i;
  first = i;
  if (first == 0 || i == id.size() || id[i] != '.') return SocketIdError::malformed;
  ++i;
  const size_t second_start = i;
  while (i < id.size() && id[i] >= '0' && id[i] <= '9') ++i;
  const size_t second = i - second_start;
  if (second == 0 || i != id.size()) return SocketIdError::malformed;
  if (first > kMaxSocketIdPart || second > kMaxSocketIdPart) return SocketIdError::too_long;
  return SocketIdError::none;
}

const char* describe(AuthError e) noexcept {
  switch (e) {
    case AuthError::none: return "valid signature";
    case AuthError::missing: return "auth is missing";
    case AuthError::malformed: return "auth is not of the form key:signature";
    case AuthError::wrong_key: return "auth key does not match the app key";
    case AuthError::malformed_signature: return "auth signature is not 64 hex digits";
    case AuthError::wrong_signature: return "invalid signature";
    case AuthError::crypto_failure: return "signature could not be computed";
  }
  return "invalid auth";
}

AppSigner::AppSigner(std::string_view key, std::string_view secret) : key_(key) {
  mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac_ != nullptr) ctx_ = EVP_MAC_CTX_new(mac_);
  if (ctx_ == nullptr) return;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx_, bytes_of(secret), secret.size(), params) != 1) {
    EVP_MAC_CTX_free(ctx_);
    ctx_ = nullptr;
  }
}

AppSigner::~AppSigner() {
  EVP_MAC_CTX_free(ctx_);
  EVP_MAC_free(mac_);
}

AppSigner::AppSigner(AppSigner&& other) noexcept
    : key_(std::move(other.key_)),
      mac_(std::exchange(other.mac_, nullptr)),
      ctx_(std::exchange(other.ctx_, nullptr)) {}

AppSigner& AppSigner::operator=(AppSigner&& other) noexcept {
  if (this != &other) {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
    key_ = std::move(other.key_);
    mac_ = std::exchange(other.mac_, nullptr);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

bool AppSigner::mac(std::initializer_list<std::string_view> pieces, uint8_t out[kSha256Size]) noexcept {
  std::memset(out, 0, kSha256Size);
  if (ctx_ == nullptr) return false;
  // A null key reinitialises the context with the key set in the
  // constructor: the padded key blocks are not hashed again.
  if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) return false;
  for (std::string_view p : pieces) {
    if (!p.empty() && EVP_MAC_update(ctx_, bytes_of(p), p.size()) != 1) return false;
  }
  size_t len = 0;
  if (EVP_MAC_final(ctx_, out, &len, kSha256Size) != 1 || len != kSha256Size) {
    std::memset(out, 0, kSha256Size);
    return false;
  }
  return true;
}

bool AppSigner::sign(std::initializer_list<std::string_view> pieces, Sha256Hex& out) noexcept {
  uint8_t md[kSha256Size];
  const bool ok = mac(pieces, md);
  if (!ok) {
    out = Sha256Hex{};
    return false;
  }
  to_hex(md, kSha256Size, out.text);
  return true;
}

bool AppSigner::sign_private(std::string_view socket_id, std::string_view channel, Sha256Hex& out) noexcept {
  return sign({socket_id, ":", channel}, out);
}

bool AppSigner::sign_presence(std::string_view socket_id, std::string_view channel,
                              std::string_view channel_data, Sha256Hex& out) noexcept {
  return sign({socket_id, ":", channel, ":", channel_data}, out);
}

bool AppSigner::sign_user(std::string_view socket_id, std::string_view user_data, Sha256Hex& out) noexcept {
  return sign({socket_id, "::user::", user_data}, out);
}

bool AppSigner::sign_webhook(std::string_view body, Sha256Hex& out) noexcept {
  return sign({body}, out);
}

AuthError AppSigner::verify_hex(std::string_view hex,
                                std::initializer_list<std::string_view> pieces) noexcept {
  uint8_t claimed[kSha256Size];
  if (!decode_sha256_hex(hex, claimed)) return AuthError::malformed_signature;
  uint8_t expected[kSha256Size];
  if (!mac(pieces, expected)) return AuthError::crypto_failure;
  return CRYPTO_memcmp(claimed, expected, kSha256Size) == 0 ? AuthError::none : AuthError::wrong_signature;
}

AuthError AppSigner::verify(std::string_view auth, std::initializer_list<std::string_view> pieces) noexcept {
  if (auth.empty()) return AuthError::missing;
  const size_t colon = auth.find(':');
  if (colon == std::string_view::npos) return AuthError::malformed;
  // The key is public (it is in every client's URL): a plain comparison.
  if (auth.substr(0, colon) != key_) return AuthError::wrong_key;
  return verify_hex(auth.substr(colon + 1), pieces);
}

AuthError AppSigner::verify_channel(ChannelType type, std::string_view auth, std::string_view socket_id,
                                    std::string_view channel, std::string_view channel_data) noexcept {
  switch (type) {
    case ChannelType::public_: return AuthError::none;
    case ChannelType::private_:
    case ChannelType::private_encrypted: return verify_private(auth, socket_id, channel);
    case ChannelType::presence: return verify_presence(auth, socket_id, channel, channel_data);
  }
  return AuthError::wrong_signature;
}

AuthError AppSigner::verify_private(std::string_view auth, std::string_view socket_id,
                                    std::string_view channel) noexcept {
  return verify(auth, {socket_id, ":", channel});
}

AuthError AppSigner::verify_presence(std::string_view auth, std::string_view socket_id,
                                     std::string_view channel, std::string_view channel_data) noexcept {
  return verify(auth, {socket_id, ":", channel, ":", channel_data});
}

AuthError AppSigner::verify_user(std::string_view auth, std::string_view socket_id,
                                 std::string_view user_data) noexcept {
  return verify(auth, {socket_id, "::user::", user_data});
}

}  // namespace windlass::channels
