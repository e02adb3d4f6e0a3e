// Tokens for the JWT tests, made at test time: real ones with libjwt (what
// an application's issuer would produce), and hand-assembled ones with
// OpenSSL for what libjwt will not make — "alg": "none", odd headers, an
// HS256 token keyed with an RSA public key, a payload swapped under a
// valid signature. Keys are generated here too (RSA 2048 in libcrypto,
// which the sanitizers do not instrument, so it stays fast).
#pragma once

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace windlass::test {

inline std::string b64url(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

// A token through libjwt: `payload` is a JSON object of grants.
inline std::string libjwt_token(jwt_alg_t alg, std::string_view key, const std::string& payload) {
  jwt_t* j = nullptr;
  if (jwt_new(&j) != 0) throw std::runtime_error("jwt_new");
  std::unique_ptr<jwt_t, decltype(&jwt_free)> guard(j, jwt_free);
  if (jwt_add_grants_json(j, payload.c_str()) != 0)
    throw std::runtime_error("jwt_add_grants_json: " + payload);
  if (jwt_set_alg(j, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())) !=
      0) {
    throw std::runtime_error("jwt_set_alg");
  }
  char* s = jwt_encode_str(j);
  if (s == nullptr) throw std::runtime_error("jwt_encode_str");
  std::string out(s);
  free(s);
  return out;
}

inline std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// header.payload signed with HMAC-SHA-256 under `key`, assembled by hand.
inline std::string hs256_by_hand(std::string_view key, const std::string& header,
                                 const std::string& payload) {
  const std::string input = b64url(header) + "." + b64url(payload);
  return input + "." + b64url(hmac_sha256(key, input));
}

struct RsaKey {
  std::string private_pem;
  std::string public_pem;
};

inline RsaKey make_rsa_key(unsigned bits = 2048) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(bits), EVP_PKEY_free);
  if (!key) throw std::runtime_error("EVP_RSA_gen");
  auto pem = [&](bool priv) {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
    const int ok = priv ? PEM_write_bio_PrivateKey(b.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)
                        : PEM_write_bio_PUBKEY(b.get(), key.get());
    if (ok != 1) throw std::runtime_error("PEM_write");
    char* data = nullptr;
    const long n = BIO_get_mem_data(b.get(), &data);
    return std::string(data, static_cast<size_t>(n));
  };
  return {pem(true), pem(false)};
}

// A self-signed certificate (PEM) for `key`'s public half.
inline std::string self_signed_certificate(const RsaKey& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_mem_buf(key.private_pem.data(), -1), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("issuer.test"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) == 0) throw std::runtime_error("X509_sign");
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(out.get(), cert.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// The RSA keys of this test process, made once.
inline const RsaKey& issuer_key() {
  static const RsaKey k = make_rsa_key();
  return k;
}
inline const RsaKey& other_key() {
  static const RsaKey k = make_rsa_key();
  return k;
}

}  // namespace windlass::test
