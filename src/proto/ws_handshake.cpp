// The server side of the RFC 6455 opening handshake (§4.2). See ws_handshake.hpp.
#include "proto/ws_handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace windlass::proto {

namespace {

// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// RFC 6455 §4.1 item 7: the key is the base64 of 16 random bytes, which is
// always 22 alphabet characters and "==". The two padding bits in the last
// character are not checked, as the common decoders do not check them
// either; any such key hashes the same way for both ends.
bool is_valid_key(std::string_view key) noexcept {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

// The fields the handshake reads, gathered in one pass over the headers.
// RFC 9110 §5.3: several field lines with one name are one comma-separated
// list, so a token may be in any of them (e.g. "Connection: keep-alive" and
// "Connection: Upgrade" on separate lines); the counts let the fields that
// must appear once be refused when repeated.
struct UpgradeFields {
  std::string_view host, version, key, protocols, extensions, origin;
  size_t hosts = 0, versions = 0, keys = 0;
  bool upgrade_websocket = false;
  bool connection_upgrade = false;
};

// Keeps the first value of a field and counts its lines.
void take(std::string_view value, std::string_view& first, size_t& count) noexcept {
  if (count++ == 0) first = value;
}

UpgradeFields gather(const HttpRequestHead& req) noexcept {
  UpgradeFields f;
  size_t protocols = 0, extensions = 0, origins = 0;
  for (size_t i = 0; i < req.header_count && i < HttpRequestHead::kMaxHeaders; ++i) {
    const std::string_view name = req.headers[i].name;
    const std::string_view value = req.headers[i].value;
    // The length picks the one candidate name before any byte is compared.
    switch (name.size()) {
      case 4:
        if (iequals(name, "Host")) take(value, f.host, f.hosts);
        break;
      case 6:
        if (iequals(name, "Origin")) take(value, f.origin, origins);
        break;
      case 7:
        if (iequals(name, "Upgrade") && header_has_token(value, "websocket")) {
          f.upgrade_websocket = true;
        }
        break;
      case 10:
        if (iequals(name, "Connection") && header_has_token(value, "upgrade")) {
          f.connection_upgrade = true;
        }
        break;
      case 17:
        if (iequals(name, "Sec-WebSocket-Key")) take(value, f.key, f.keys);
        break;
      case 21:
        if (iequals(name, "Sec-WebSocket-Version")) take(value, f.version, f.versions);
        break;
      case 22:
        if (iequals(name, "Sec-WebSocket-Protocol")) take(value, f.protocols, protocols);
        break;
      case 24:
        if (iequals(name, "Sec-WebSocket-Extensions")) take(value, f.extensions, extensions);
        break;
      default: break;
    }
  }
  return f;
}

}  // namespace

int http_status_for(HandshakeError e) noexcept {
  switch (e) {
    case HandshakeError::none: return 101;
    case HandshakeError::method_not_get: return 405;
    case HandshakeError::http_version:
    case HandshakeError::missing_host:
    case HandshakeError::missing_connection_upgrade:
    case HandshakeError::bad_key: return 400;
    case HandshakeError::not_upgrade:
    case HandshakeError::bad_version: return 426;
  }
  return 400;
}

const char* describe(HandshakeError e) noexcept {
  switch (e) {
    case HandshakeError::none: return "no error";
    case HandshakeError::method_not_get: return "WebSocket upgrade requires GET";
    case HandshakeError::http_version: return "WebSocket upgrade requires HTTP/1.1 or later";
    case HandshakeError::missing_host: return "missing or repeated Host header";
    case HandshakeError::not_upgrade: return "Upgrade header does not name websocket";
    case HandshakeError::missing_connection_upgrade: return "Connection header lacks the upgrade token";
    case HandshakeError::bad_version: return "Sec-WebSocket-Version is not 13";
    case HandshakeError::bad_key: return "Sec-WebSocket-Key is missing or not base64 of 16 bytes";
  }
  return "unknown handshake error";
}

bool wants_websocket(const HttpRequestHead& req) noexcept {
  for (size_t i = 0; i < req.header_count && i < HttpRequestHead::kMaxHeaders; ++i) {
    if (iequals(req.headers[i].name, "Upgrade") && header_has_token(req.headers[i].value, "websocket")) {
      return true;
    }
  }
  return false;
}

HandshakeError validate_upgrade(const HttpRequestHead& req, UpgradeRequest& out) noexcept {
  out = UpgradeRequest{};
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". Methods are
  // case-sensitive (RFC 9110 §9.1), so "get" is not GET.
  if (req.method != "GET") return HandshakeError::method_not_get;
  if (req.version_minor < 1) return HandshakeError::http_version;

  const UpgradeFields f = gather(req);
  // §4.2.1 item 2: a Host header field. RFC 9112 §3.2 makes a request with
  // no Host, or with more than one, a 400; an empty one names no authority.
  if (f.hosts != 1 || f.host.empty()) return HandshakeError::missing_host;
  // §4.2.1 item 3: Upgrade contains "websocket", case-insensitively.
  if (!f.upgrade_websocket) return HandshakeError::not_upgrade;
  // §4.2.1 item 4: Connection contains the token "Upgrade", case-insensitively.
  if (!f.connection_upgrade) return HandshakeError::missing_connection_upgrade;
  // §4.2.1 item 6: Sec-WebSocket-Version is 13; §11.3.5: it MUST NOT appear
  // more than once in a request.
  if (f.versions != 1 || f.version != "13") return HandshakeError::bad_version;
  // §4.2.1 item 5: Sec-WebSocket-Key decodes to 16 bytes; §11.3.1: it MUST
  // NOT appear more than once in a request.
  if (f.keys != 1 || !is_valid_key(f.key)) return HandshakeError::bad_key;

  out.key = f.key;
  // §11.3.4 and §11.3.2 let these two appear more than once; the first line
  // of each is reported, which can only make the server choose from fewer
  // offers, never choose one that was not offered.
  out.protocols = f.protocols;
  out.extensions = f.extensions;
  out.origin = f.origin;
  return HandshakeError::none;
}

std::string compute_accept_key(std::string_view client_key) {
  // §4.2.2 item 5.4: base64(SHA-1(key + GUID)). The two parts are hashed
  // one after the other, so no concatenated copy of the key is made.
  //
  // OpenSSL 3 looks an algorithm up by name on every use of EVP_sha1(),
  // which costs twice the hash itself; the SHA-1 implementation is fetched
  // once per process and kept (an immutable handle, safe to share between
  // threads), with EVP_sha1() as the fallback should the fetch fail.
  static EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  const EVP_MD* const sha1 = fetched != nullptr ? fetched : EVP_sha1();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, sha1, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, client_key.data(), client_key.size()) == 1 &&
                  EVP_DigestUpdate(ctx, kWebSocketGuid.data(), kWebSocketGuid.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1;
  EVP_MD_CTX_free(ctx);
  // Only an OpenSSL failure (out of memory) lands here; an empty key is then
  // returned rather than a wrong one, and the caller answers with a 500.
  if (!ok || digest_len != SHA_DIGEST_LENGTH) return {};

  // 20 bytes encode to 28 base64 characters; EVP_EncodeBlock adds a NUL.
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<size_t>(n));
}

std::string_view select_subprotocol(std::string_view offered,
                                    std::span<const std::string> supported) noexcept {
  // §4.2.2 item 5.5 / §11.3.4: the client's list is comma-separated tokens;
  // the server's own order decides, and the names match case-sensitively
  // (unlike most HTTP tokens, subprotocol names are compared exactly).
  for (const std::string& want : supported) {
    if (want.empty()) continue;
    std::string_view rest = offered;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view element = rest.substr(0, comma);
      while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
        element.remove_prefix(1);
      }
      while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
        element.remove_suffix(1);
      }
      if (element == want) return want;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return {};
}

std::string& build_accept_response(std::string& out, std::string_view accept_key,
                                   std::string_view subprotocol, std::string_view extensions) {
  // §4.2.2 item 5: the status line, Upgrade, Connection and
  // Sec-WebSocket-Accept are required; the subprotocol and the accepted
  // extensions are sent only when there are any (§4.2.2 items 5.5, 5.6).
  static constexpr std::string_view kHead =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  out.clear();
  out.reserve(kHead.size() + accept_key.size() + subprotocol.size() + extensions.size() + 80);
  out.append(kHead).append(accept_key).append("\r\n");
  if (!subprotocol.empty()) out.append("Sec-WebSocket-Protocol: ").append(subprotocol).append("\r\n");
  if (!extensions.empty()) {
    out.append("Sec-WebSocket-Extensions: ").append(extensions).append("\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace windlass::proto
