// A throw-away PKI for TLS tests, made at test time with the OpenSSL API:
// a root CA, an optional intermediate, and server certificates for
// "localhost", written as PEM into a temporary directory that is removed
// with the object. Nothing is checked in and nothing touches the network.
// EC P-256 keys: a few milliseconds each, where RSA 2048 takes far longer
// under the sanitizers.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace windlass::tls::testing {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

inline PkeyPtr make_key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  if (!key) throw std::runtime_error("test pki: EC key generation failed");
  return key;
}

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) throw std::runtime_error(std::string("test pki: bad extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key`, named CN=`common_name`, signed by `issuer` with
// `issuer_key` (self-signed when issuer is null).
inline X509Ptr make_cert(EVP_PKEY* key, const std::string& common_name, long serial, bool is_ca, X509* issuer,
                         EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new(), X509_free);
  X509* x = cert.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  add_ext(x, signer, NID_subject_key_identifier, "hash");
  if (is_ca) {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage, "critical,digitalSignature");
    add_ext(x, signer, NID_ext_key_usage, "serverAuth");
    add_ext(x, signer, NID_subject_alt_name, "DNS:localhost");
  }
  if (issuer != nullptr) add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
  if (X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    throw std::runtime_error("test pki: signing failed");
  }
  return cert;
}

class TestPki {
 public:
  struct Files {
    std::string certificate_chain_file;
    std::string private_key_file;
  };

  TestPki()
      : ca_key_(make_key()), ca_(make_cert(ca_key_.get(), "windlass test root", 1, true, nullptr, nullptr)) {
    std::string pattern = (std::filesystem::temp_directory_path() / "windlass-tls-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("test pki: mkdtemp failed");
    dir_ = pattern;
  }
  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  X509* ca() const noexcept { return ca_.get(); }
  const std::filesystem::path& dir() const noexcept { return dir_; }

  // A server certificate CN=`common_name` with this serial, for DNS name
  // "localhost", written to <stem>.crt (the chain: leaf, then the
  // intermediate if any) and <stem>.key. With `via_intermediate`, the
  // root signs an intermediate that signs the leaf, so a client that
  // trusts only the root needs the chain file's second certificate.
  Files issue(const std::string& stem, const std::string& common_name, long serial,
              bool via_intermediate = false) {
    PkeyPtr key = make_key();
    Files f{(dir_ / (stem + ".crt")).string(), (dir_ / (stem + ".key")).string()};
    if (via_intermediate) {
      PkeyPtr mid_key = make_key();
      X509Ptr mid = make_cert(mid_key.get(), "windlass test intermediate", serial + 1000, true, ca_.get(),
                              ca_key_.get());
      X509Ptr leaf = make_cert(key.get(), common_name, serial, false, mid.get(), mid_key.get());
      write_pem(f.certificate_chain_file, [&](FILE* fp) {
        return PEM_write_X509(fp, leaf.get()) == 1 && PEM_write_X509(fp, mid.get()) == 1;
      });
    } else {
      X509Ptr leaf = make_cert(key.get(), common_name, serial, false, ca_.get(), ca_key_.get());
      write_pem(f.certificate_chain_file, [&](FILE* fp) { return PEM_write_X509(fp, leaf.get()) == 1; });
    }
    write_pem(f.private_key_file, [&](FILE* fp) {
      return PEM_write_PrivateKey(fp, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
    });
    return f;
  }

  // Writes `text` to a file in the directory (for malformed-PEM tests).
  std::string write_file(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    write_pem(path, [&](FILE* fp) { return std::fwrite(text.data(), 1, text.size(), fp) == text.size(); });
    return path;
  }

 private:
  template <typename Fn>
  static void write_pem(const std::string& path, Fn&& fn) {
    FILE* fp = std::fopen(path.c_str(), "wb");
    if (fp == nullptr) throw std::runtime_error("test pki: cannot create " + path);
    const bool ok = fn(fp);
    if (std::fclose(fp) != 0 || !ok) throw std::runtime_error("test pki: cannot write " + path);
  }

  PkeyPtr ca_key_;
  X509Ptr ca_;
  std::filesystem::path dir_;
};

}  // namespace windlass::tls::testing
