// JwtVerifier and JwtAuth (include/windlass/auth.hpp).
//
// libjwt 1.10 (Debian 12) verifies signatures; everything around it is
// checked here, because of what that version does and does not do:
// - jwt_decode() verifies with whatever algorithm the token's header
//   names, using the key it is given. Given an RSA public key in PEM, an
//   "HS256" token would be checked as an HMAC keyed with that public text,
//   which anyone can compute (the algorithm confusion attack). So the
//   header's "alg" is read and compared with the configured algorithm
//   here, before libjwt sees the key; libjwt's own alg is compared again
//   after it decoded.
// - It refuses "alg": "none" when a key is given, but nothing relies on
//   that: "none" is never the configured algorithm.
// - The HMAC signature is compared by libjwt: Debian's 1.10.2-1+deb12u1
//   (CVE-2024-25189) replaced its strcmp() of the base64url text with a
//   compare that always walks the whole of the longer string, so its time
//   does not depend on where the first wrong byte is. RSA signatures are
//   checked by OpenSSL's EVP_DigestVerify. Nothing secret is compared here:
//   iss and aud are public values.
// - It checks no claim at all (exp, nbf, iss, aud): done here, on the
//   payload parsed again with nlohmann::json, after the signature held.
#include <jwt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "auth/claims.hpp"
#include "auth/log_text.hpp"
#include "log.hpp"
#include "proto/http1_parser.hpp"
#include "windlass/auth.hpp"

namespace windlass {

const char* to_string(JwtAlgorithm a) noexcept {
  switch (a) {
    case JwtAlgorithm::hs256: return "HS256";
    case JwtAlgorithm::rs256: return "RS256";
  }
  return "?";
}

const char* to_string(JwtError e) noexcept {
  switch (e) {
    case JwtError::none: return "none";
    case JwtError::no_token: return "no_token";
    case JwtError::malformed: return "malformed";
    case JwtError::algorithm_mismatch: return "algorithm_mismatch";
    case JwtError::bad_signature: return "bad_signature";
    case JwtError::no_expiry: return "no_expiry";
    case JwtError::expired: return "expired";
    case JwtError::not_yet_valid: return "not_yet_valid";
    case JwtError::wrong_issuer: return "wrong_issuer";
    case JwtError::wrong_audience: return "wrong_audience";
    case JwtError::internal: return "internal";
  }
  return "?";
}

const char* describe(JwtError e) noexcept {
  switch (e) {
    case JwtError::none: return "valid token";
    case JwtError::no_token: return "a token is required";
    case JwtError::malformed: return "malformed token";
    case JwtError::algorithm_mismatch: return "token algorithm not accepted";
    case JwtError::bad_signature: return "bad token signature";
    case JwtError::no_expiry: return "token has no expiry";
    case JwtError::expired: return "token expired";
    case JwtError::not_yet_valid: return "token not yet valid";
    case JwtError::wrong_issuer: return "wrong token issuer";
    case JwtError::wrong_audience: return "wrong token audience";
    case JwtError::internal: return "internal server error";
  }
  return "?";
}

int http_status_for(JwtError e) noexcept {
  return e == JwtError::internal ? 500 : 401;
}

uint64_t JwtAuthStats::refused_total() const noexcept {
  uint64_t n = 0;
  for (uint64_t r : refused) n += r;
  return n;
}

namespace {

// RFC 4648 §5 without padding, as JWS uses it (RFC 7515 §2). Strict: any
// other byte, or a length no encoding has, is refused.
std::optional<std::string> base64url_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};

// The RSA public key of `pem` (a PUBLIC KEY, or a CERTIFICATE's key),
// written back as a PUBLIC KEY PEM, which is what libjwt reads.
std::string rsa_public_key_pem(std::string_view pem) {
  if (pem.size() > (1u << 20)) throw std::invalid_argument("public_key: over 1 MiB");
  auto bio = [&] {
    return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  };
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
  {
    auto in = bio();
    key.reset(PEM_read_bio_PUBKEY(in.get(), nullptr, nullptr, nullptr));
  }
  if (!key) {
    ERR_clear_error();
    auto in = bio();
    std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
    if (cert) key.reset(X509_get_pubkey(cert.get()));
  }
  if (!key) {
    throw std::invalid_argument("public_key: not a PEM public key (BEGIN PUBLIC KEY) or certificate: " +
                                openssl_error());
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_RSA)
    throw std::invalid_argument("public_key: not an RSA key (RS256)");
  if (EVP_PKEY_get_bits(key.get()) < 2048) {
    throw std::invalid_argument("public_key: RSA key of " + std::to_string(EVP_PKEY_get_bits(key.get())) +
                                " bits; RS256 needs 2048 or more (RFC 7518 §3.3)");
  }
  std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) {
    throw std::invalid_argument("public_key: cannot re-encode: " + openssl_error());
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument("public_key_file " + path + ": cannot be opened");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string describe_sources(const std::vector<JwtTokenSource>& sources) {
  std::string out;
  for (const JwtTokenSource& s : sources) {
    if (!out.empty()) out += ", ";
    switch (s.kind) {
      case JwtTokenSource::Kind::bearer: out += "Authorization: Bearer"; break;
      case JwtTokenSource::Kind::query: out += "query parameter " + s.name; break;
      case JwtTokenSource::Kind::cookie: out += "cookie " + s.name; break;
    }
  }
  return out;
}

// The token of an Authorization value "Bearer <token>" (the scheme is
// case-insensitive, RFC 7235 §2.1), or nullopt for another scheme.
std::optional<std::string> bearer_token(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() < kScheme.size() || !proto::iequals(value.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  if (!value.empty() && value.front() != ' ' && value.front() != '\t') return std::nullopt;  // "Bearerx"
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  return std::string(value);
}

// A NumericDate (RFC 7519 §2): any JSON number, fractions allowed.
std::optional<double> numeric_date(const nlohmann::json& payload, const char* name, bool& wrong_type) {
  auto it = payload.find(name);
  if (it == payload.end()) return std::nullopt;
  if (!it->is_number()) {
    wrong_type = true;
    return std::nullopt;
  }
  return it->get<double>();
}

int64_t whole_seconds(double d) {
  // Far beyond any real date a double still converts: clamp first.
  if (d >= 9.2e18) return INT64_MAX;
  if (d <= -9.2e18) return INT64_MIN;
  return static_cast<int64_t>(std::floor(d));
}

JwtResult fail(JwtError e, std::string detail) {
  JwtResult r;
  r.error = e;
  r.detail = std::move(detail);
  return r;
}

struct JwtFree {
  void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};

}  // namespace

// ------------------------------------------------------------ JwtVerifier

struct JwtVerifier::Impl {
  JwtOptions options;
  std::string key;  // the HMAC secret, or the public key as PUBLIC KEY PEM
  jwt_alg_t alg = JWT_ALG_HS256;
  std::string sources_text;
};

JwtVerifier::JwtVerifier(JwtOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (options.issuer.empty()) throw std::invalid_argument("jwt: issuer is required (the token's iss)");
  if (options.audience.empty()) throw std::invalid_argument("jwt: audience is required (the token's aud)");
  if (options.sources.empty()) throw std::invalid_argument("jwt: sources is empty: no token could be found");
  for (const JwtTokenSource& s : options.sources) {
    if (s.kind != JwtTokenSource::Kind::bearer && s.name.empty()) {
      throw std::invalid_argument("jwt: a query or cookie source needs a name");
    }
  }
  if (options.leeway.count() < 0) throw std::invalid_argument("jwt: leeway is negative");
  switch (options.algorithm) {
    case JwtAlgorithm::hs256:
      if (options.secret.size() < 32) {
        throw std::invalid_argument("jwt: HS256 secret of " + std::to_string(options.secret.size()) +
                                    " bytes; it must have at least 32 (RFC 7518 §3.2)");
      }
      if (!options.public_key.empty() || !options.public_key_file.empty()) {
        throw std::invalid_argument("jwt: HS256 takes a secret, not a public key");
      }
      m.key = options.secret;
      m.alg = JWT_ALG_HS256;
      break;
    case JwtAlgorithm::rs256:
      if (!options.secret.empty()) throw std::invalid_argument("jwt: RS256 takes a public key, not a secret");
      if (options.public_key.empty() == options.public_key_file.empty()) {
        throw std::invalid_argument("jwt: RS256 needs one of public_key and public_key_file");
      }
      m.key = rsa_public_key_pem(options.public_key.empty() ? read_file(options.public_key_file)
                                                            : options.public_key);
      m.alg = JWT_ALG_RS256;
      break;
  }
  m.sources_text = describe_sources(options.sources);
  m.options = std::move(options);
}

JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&&) noexcept = default;

const JwtOptions& JwtVerifier::options() const noexcept {
  return impl_->options;
}

std::optional<std::string> JwtVerifier::find_token(const Request& request) const {
  for (const JwtTokenSource& s : impl_->options.sources) {
    switch (s.kind) {
      case JwtTokenSource::Kind::bearer:
        if (auto v = request.header("authorization")) {
          if (auto t = bearer_token(*v)) return t;
        }
        break;
      case JwtTokenSource::Kind::query:
        if (auto v = request.query_param(s.name)) return v;
        break;
      case JwtTokenSource::Kind::cookie:
        if (auto v = request.cookie(s.name)) return v;
        break;
    }
  }
  return std::nullopt;
}

JwtResult JwtVerifier::verify(std::string_view token) const {
  const Impl& m = *impl_;
  const JwtOptions& o = m.options;
  if (token.empty()) return fail(JwtError::malformed, "the token is empty");
  if (token.size() > o.max_token_size) {
    return fail(JwtError::malformed, "the token has " + std::to_string(token.size()) + " bytes, over " +
                                         std::to_string(o.max_token_size));
  }

  // Form: three base64url parts (RFC 7515 §7.1); five would be a JWE, which is not accepted.
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(JwtError::malformed, "not three dot-separated parts");
  }
  const std::string_view head64 = token.substr(0, dot1);
  const std::string_view body64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig64 = token.substr(dot2 + 1);
  auto head_text = base64url_decode(head64);
  auto body_text = base64url_decode(body64);
  if (!head_text || !body_text || head64.empty() || body64.empty()) {
    return fail(JwtError::malformed, "header or payload is not base64url");
  }
  auto header = detail::parse_json_object(*head_text);
  if (!header) return fail(JwtError::malformed, "the header is not a JSON object");

  // The algorithm, before any key is used.
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) return fail(JwtError::malformed, "the header has no alg");
  const std::string alg_name = alg->get<std::string>();
  if (alg_name != to_string(o.algorithm)) {
    return fail(JwtError::algorithm_mismatch, "alg \"" + detail::log_text(alg_name, 32) + "\", only " +
                                                  to_string(o.algorithm) + " is accepted");
  }
  if (auto typ = header->find("typ"); typ != header->end()) {
    // libjwt refuses any other typ; say so precisely rather than as a bad signature.
    if (!typ->is_string() || !proto::iequals(typ->get<std::string>(), "JWT")) {
      return fail(JwtError::malformed, "typ is not \"JWT\"");
    }
  }
  // RFC 7515 §4.1.11: extensions listed in "crit" must be understood; none is.
  if (header->contains("crit"))
    return fail(JwtError::malformed, "a crit header (no extension is understood)");

  auto payload = detail::parse_json_object(*body_text);
  if (!payload) return fail(JwtError::malformed, "the payload is not a JSON object");
  if (sig64.empty() || !base64url_decode(sig64))
    return fail(JwtError::malformed, "the signature is not base64url");

  // The signature.
  {
    const std::string nul_terminated(token);
    jwt_t* raw = nullptr;
    const int rc =
        jwt_decode(&raw, nul_terminated.c_str(), reinterpret_cast<const unsigned char*>(m.key.data()),
                   static_cast<int>(m.key.size()));
    std::unique_ptr<jwt_t, JwtFree> decoded(raw);
    // libjwt's OpenSSL calls leave errors on this thread's queue when a
    // signature fails, and the TLS sessions of this loop read that queue.
    ERR_clear_error();
    // EINVAL: the signature does not verify (the form was checked above;
    // libjwt's own JSON parser refusing what ours took would land here too).
    if (rc == EINVAL)
      return fail(JwtError::bad_signature,
                  std::string("does not verify with the ") + to_string(o.algorithm) + " key");
    if (rc != 0 || !decoded)
      return fail(JwtError::internal, "libjwt: jwt_decode failed with errno " + std::to_string(rc));
    if (jwt_get_alg(decoded.get()) != m.alg) {
      return fail(JwtError::algorithm_mismatch, "libjwt decoded another algorithm than the header's");
    }
  }

  // The claims, of an authentic token.
  const double now = std::chrono::duration<double>(
                         (o.clock ? o.clock() : std::chrono::system_clock::now()).time_since_epoch())
                         .count();
  const double leeway = static_cast<double>(o.leeway.count());
  bool wrong_type = false;
  const auto exp = numeric_date(*payload, "exp", wrong_type);
  const auto nbf = numeric_date(*payload, "nbf", wrong_type);
  const auto iat = numeric_date(*payload, "iat", wrong_type);
  if (wrong_type) return fail(JwtError::malformed, "exp, nbf or iat is not a number");
  if (!exp && o.require_exp) return fail(JwtError::no_expiry, "no exp claim");
  // RFC 7519 §4.1.4: valid only before exp; §4.1.5: not before nbf.
  if (exp && now >= *exp + leeway) {
    return fail(JwtError::expired, "exp " + std::to_string(whole_seconds(*exp)) + " is " +
                                       std::to_string(whole_seconds(now - *exp)) + " s past, leeway " +
                                       std::to_string(o.leeway.count()) + " s");
  }
  if (nbf && now + leeway < *nbf) {
    return fail(JwtError::not_yet_valid, "nbf " + std::to_string(whole_seconds(*nbf)) + " is " +
                                             std::to_string(whole_seconds(*nbf - now)) + " s ahead, leeway " +
                                             std::to_string(o.leeway.count()) + " s");
  }

  JwtClaims claims;
  auto iss = payload->find("iss");
  if (iss == payload->end() || !iss->is_string()) return fail(JwtError::wrong_issuer, "no iss string");
  claims.issuer = iss->get<std::string>();
  if (claims.issuer != o.issuer) {
    return fail(JwtError::wrong_issuer,
                "iss \"" + detail::log_text(claims.issuer) + "\" is not \"" + o.issuer + "\"");
  }

  // RFC 7519 §4.1.3: a string, or an array of strings.
  auto aud = payload->find("aud");
  if (aud == payload->end()) return fail(JwtError::wrong_audience, "no aud claim");
  if (aud->is_string()) {
    claims.audience.push_back(aud->get<std::string>());
  } else if (aud->is_array()) {
    for (const auto& a : *aud) {
      if (!a.is_string()) return fail(JwtError::wrong_audience, "aud holds something other than strings");
      claims.audience.push_back(a.get<std::string>());
    }
  } else {
    return fail(JwtError::wrong_audience, "aud is not a string or an array of strings");
  }
  bool ours = false;
  for (const std::string& a : claims.audience) ours = ours || a == o.audience;
  if (!ours) {
    const std::string seen = aud->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return fail(JwtError::wrong_audience,
                "aud " + detail::log_text(seen) + " does not hold \"" + o.audience + "\"");
  }

  if (auto sub = payload->find("sub"); sub != payload->end()) {
    if (!sub->is_string()) return fail(JwtError::malformed, "sub is not a string");
    claims.subject = sub->get<std::string>();
  }
  if (auto jti = payload->find("jti"); jti != payload->end() && jti->is_string()) {
    claims.token_id = jti->get<std::string>();
  }
  if (exp) claims.expires_at = whole_seconds(*exp);
  if (nbf) claims.not_before = whole_seconds(*nbf);
  if (iat) claims.issued_at = whole_seconds(*iat);
  claims.payload = detail::make_claims(std::move(*payload));
  JwtResult r;
  r.claims = std::move(claims);
  return r;
}

// ------------------------------------------------------------ JwtAuth

// Touched once per handshake by every loop: atomics are cheap enough here.
struct JwtAuth::Counters {
  std::atomic<uint64_t> verified{0};
  std::array<std::atomic<uint64_t>, kJwtErrorCount> refused{};
};

JwtAuth::JwtAuth(std::shared_ptr<MessageComponent> inner, JwtOptions options, OnVerified on_verified)
    : ComponentDecorator(std::move(inner)),
      verifier_(std::move(options)),
      on_verified_(std::move(on_verified)),
      counters_(std::make_unique<Counters>()) {}

JwtAuth::~JwtAuth() = default;

void JwtAuth::on_upgrade(Upgrade& upgrade) {
  const Request& r = upgrade.request();
  JwtResult result;
  if (auto token = verifier_.find_token(r)) {
    result = verifier_.verify(*token);
  } else {
    result.error = JwtError::no_token;
    result.detail = "none in " + describe_sources(verifier_.options().sources);
  }
  if (!result.ok()) {
    const JwtError e = result.error;
    counters_->refused[static_cast<size_t>(e)].fetch_add(1, std::memory_order_relaxed);
    // The HTTP layer logs the status and describe(e); this line says what exactly.
    detail::log_info("jwt: {} {}: {}: {}", r.client_address, r.path, describe(e), result.detail);
    // RFC 6750 §3: a missing token gets the bare challenge, a bad one invalid_token.
    std::string challenge = e == JwtError::no_token ? "Bearer" : "Bearer error=\"invalid_token\"";
    if (http_status_for(e) != 401) return upgrade.refuse(http_status_for(e), describe(e));
    return upgrade.refuse(401, describe(e), {{"WWW-Authenticate", std::move(challenge)}});
  }
  counters_->verified.fetch_add(1, std::memory_order_relaxed);
  if (on_verified_) on_verified_(upgrade, result.claims);
  if (!upgrade.answered()) inner_->on_upgrade(upgrade);
}

JwtAuthStats JwtAuth::stats() const noexcept {
  JwtAuthStats s;
  s.verified = counters_->verified.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kJwtErrorCount; ++i)
    s.refused[i] = counters_->refused[i].load(std::memory_order_relaxed);
  return s;
}

}  // namespace windlass
