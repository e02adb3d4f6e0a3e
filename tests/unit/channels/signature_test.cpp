// Signatures: every verified vector of PUSHER-PROTOCOL.md, each way a
// client's auth can be wrong, socket_id validation, and the helpers.
#include "channels/signature.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace windlass::channels {
namespace {

// The app of the protocol page's vectors.
constexpr std::string_view kKey = "278d425bdf160c739803";
constexpr std::string_view kSecret = "7ad3773142a6692b25b8";
constexpr std::string_view kSocket = "1234.1234";
constexpr std::string_view kPrivateSig = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
constexpr std::string_view kPresenceData = R"({"user_id":10,"user_info":{"name":"Mr. Channels"}})";
constexpr std::string_view kPresenceSig = "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80";
constexpr std::string_view kUserData = R"({"id":"12345"})";
constexpr std::string_view kUserSig = "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";

std::string auth(std::string_view sig) {
  return std::string(kKey) + ":" + std::string(sig);
}

TEST(PusherSignature, signs_the_private_channel_vector) {
  AppSigner signer(kKey, kSecret);
  ASSERT_TRUE(signer.ok());
  Sha256Hex sig;
  ASSERT_TRUE(signer.sign_private(kSocket, "private-foobar", sig));
  EXPECT_EQ(sig.view(), kPrivateSig);
  EXPECT_EQ(signer.verify_private(auth(kPrivateSig), kSocket, "private-foobar"), AuthError::none);
}

TEST(PusherSignature, signs_the_presence_channel_vector) {
  AppSigner signer(kKey, kSecret);
  Sha256Hex sig;
  ASSERT_TRUE(signer.sign_presence(kSocket, "presence-foobar", kPresenceData, sig));
  EXPECT_EQ(sig.view(), kPresenceSig);
  EXPECT_EQ(signer.verify_presence(auth(kPresenceSig), kSocket, "presence-foobar", kPresenceData),
            AuthError::none);
}

TEST(PusherSignature, signs_the_user_sign_in_vector) {
  AppSigner signer(kKey, kSecret);
  Sha256Hex sig;
  ASSERT_TRUE(signer.sign_user(kSocket, kUserData, sig));
  EXPECT_EQ(sig.view(), kUserSig);
  EXPECT_EQ(signer.verify_user(auth(kUserSig), kSocket, kUserData), AuthError::none);
}

TEST(PusherSignature, one_shot_hmac_agrees_with_the_prepared_signer) {
  Sha256Hex one;
  ASSERT_TRUE(hmac_sha256_hex(kSecret, "1234.1234:private-foobar", one));
  EXPECT_EQ(one.view(), kPrivateSig);
  std::string s;
  append_presence_string_to_sign(s, kSocket, "presence-foobar", kPresenceData);
  ASSERT_TRUE(hmac_sha256_hex(kSecret, s, one));
  EXPECT_EQ(one.view(), kPresenceSig);
}

TEST(PusherSignature, builds_each_string_to_sign) {
  std::string s;
  append_private_string_to_sign(s, "1.2", "private-a");
  EXPECT_EQ(s, "1.2:private-a");
  s.clear();
  append_presence_string_to_sign(s, "1.2", "presence-a", "{}");
  EXPECT_EQ(s, "1.2:presence-a:{}");
  s.clear();
  append_user_string_to_sign(s, "1.2", "{\"id\":\"1\"}");
  EXPECT_EQ(s, "1.2::user::{\"id\":\"1\"}");
}

TEST(PusherSignature, signs_webhook_bodies_with_the_secret) {
  AppSigner signer(kKey, kSecret);
  const std::string body = R"({"time_ms":1,"events":[{"name":"channel_occupied","channel":"a"}]})";
  Sha256Hex a;
  Sha256Hex b;
  ASSERT_TRUE(signer.sign_webhook(body, a));
  ASSERT_TRUE(hmac_sha256_hex(kSecret, body, b));
  EXPECT_EQ(a.view(), b.view());
}

TEST(PusherSignature, reuses_the_prepared_key_for_many_signatures) {
  AppSigner signer(kKey, kSecret);
  for (int i = 0; i < 3; ++i) {
    Sha256Hex sig;
    ASSERT_TRUE(signer.sign_private(kSocket, "private-foobar", sig));
    EXPECT_EQ(sig.view(), kPrivateSig);
    ASSERT_TRUE(signer.sign_user(kSocket, kUserData, sig));
    EXPECT_EQ(sig.view(), kUserSig);
  }
}

TEST(PusherSignature, accepts_upper_case_hex) {
  AppSigner signer(kKey, kSecret);
  std::string upper(kPrivateSig);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(signer.verify_private(auth(upper), kSocket, "private-foobar"), AuthError::none);
}

TEST(PusherSignature, refuses_an_empty_auth) {
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_private("", kSocket, "private-foobar"), AuthError::missing);
}

TEST(PusherSignature, refuses_an_auth_without_a_separator) {
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_private(kPrivateSig, kSocket, "private-foobar"), AuthError::malformed);
}

TEST(PusherSignature, refuses_another_apps_key) {
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_private("otherkey:" + std::string(kPrivateSig), kSocket, "private-foobar"),
            AuthError::wrong_key);
  EXPECT_EQ(signer.verify_private(":" + std::string(kPrivateSig), kSocket, "private-foobar"),
            AuthError::wrong_key);
  // The key is compared whole, not as a prefix.
  EXPECT_EQ(
      signer.verify_private(std::string(kKey) + "x:" + std::string(kPrivateSig), kSocket, "private-foobar"),
      AuthError::wrong_key);
}

TEST(PusherSignature, refuses_a_signature_that_is_not_64_hex_digits) {
  AppSigner signer(kKey, kSecret);
  for (const std::string& bad :
       {std::string(), std::string(kPrivateSig.substr(1)), std::string(kPrivateSig) + "0",
        "g" + std::string(kPrivateSig.substr(1)), std::string(kPrivateSig.substr(0, 63)) + " ",
        std::string(kPrivateSig.substr(0, 32)) + ":" + std::string(kPrivateSig.substr(33))}) {
    EXPECT_EQ(signer.verify_private(auth(bad), kSocket, "private-foobar"), AuthError::malformed_signature)
        << bad;
  }
}

TEST(PusherSignature, refuses_a_wrong_signature) {
  AppSigner signer(kKey, kSecret);
  std::string sig(kPrivateSig);
  sig[63] = sig[63] == '4' ? '5' : '4';
  EXPECT_EQ(signer.verify_private(auth(sig), kSocket, "private-foobar"), AuthError::wrong_signature);
  // The right signature for another string.
  EXPECT_EQ(signer.verify_private(auth(kPrivateSig), "1234.1235", "private-foobar"),
            AuthError::wrong_signature);
  EXPECT_EQ(signer.verify_private(auth(kPrivateSig), kSocket, "private-foobaz"), AuthError::wrong_signature);
  // A private signature does not open the presence channel of the same name.
  EXPECT_EQ(signer.verify_presence(auth(kPresenceSig), kSocket, "presence-foobar", "{}"),
            AuthError::wrong_signature);
  // A different secret signs differently.
  AppSigner other(kKey, "another secret");
  EXPECT_EQ(other.verify_private(auth(kPrivateSig), kSocket, "private-foobar"), AuthError::wrong_signature);
}

TEST(PusherSignature, verifies_by_channel_type) {
  AppSigner signer(kKey, kSecret);
  EXPECT_EQ(signer.verify_channel(ChannelType::public_, "", kSocket, "foobar", ""), AuthError::none);
  EXPECT_EQ(signer.verify_channel(ChannelType::private_, auth(kPrivateSig), kSocket, "private-foobar", ""),
            AuthError::none);
  EXPECT_EQ(signer.verify_channel(ChannelType::presence, auth(kPresenceSig), kSocket, "presence-foobar",
                                  kPresenceData),
            AuthError::none);
  // private-encrypted signs like private.
  Sha256Hex sig;
  ASSERT_TRUE(signer.sign_private(kSocket, "private-encrypted-x", sig));
  EXPECT_EQ(signer.verify_channel(ChannelType::private_encrypted, auth(sig.view()), kSocket,
                                  "private-encrypted-x", ""),
            AuthError::none);
  EXPECT_EQ(signer.verify_channel(ChannelType::private_, "", kSocket, "private-foobar", ""),
            AuthError::missing);
}

TEST(PusherSignature, moved_signer_keeps_its_key) {
  AppSigner a(kKey, kSecret);
  AppSigner b(std::move(a));
  EXPECT_EQ(b.key(), kKey);
  EXPECT_EQ(b.verify_private(auth(kPrivateSig), kSocket, "private-foobar"), AuthError::none);
  AppSigner c("k", "s");
  c = std::move(b);
  EXPECT_EQ(c.verify_private(auth(kPrivateSig), kSocket, "private-foobar"), AuthError::none);
}

TEST(PusherSignature, signs_with_an_empty_secret) {
  AppSigner signer("k", "");
  Sha256Hex a;
  Sha256Hex b;
  ASSERT_TRUE(signer.sign({"x"}, a));
  ASSERT_TRUE(hmac_sha256_hex("", "x", b));
  EXPECT_EQ(a.view(), b.view());
  // RFC 4231 has no empty-key case; this is HMAC-SHA256("", "") as OpenSSL computes it.
  ASSERT_TRUE(hmac_sha256_hex("", "", b));
  EXPECT_EQ(b.view(), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(PusherSignature, matches_rfc_4231_test_case_2) {
  Sha256Hex out;
  ASSERT_TRUE(hmac_sha256_hex("Jefe", "what do ya want for nothing?", out));
  EXPECT_EQ(out.view(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(PusherSignature, computes_hex_md5) {
  Md5Hex out;
  ASSERT_TRUE(md5_hex(R"({"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"})", out));
  EXPECT_EQ(out.view(), "ec365a775a4cd0599faeb73354201b6f");
  ASSERT_TRUE(md5_hex("", out));
  EXPECT_EQ(out.view(), "d41d8cd98f00b204e9800998ecf8427e");
}

TEST(PusherSignature, prepared_md5_agrees_with_the_one_shot) {
  Md5Hasher hasher;
  Md5Hex a;
  Md5Hex b;
  const std::string long_text(1000, 'x');
  for (std::string_view s : {std::string_view(""), std::string_view("a"), std::string_view(long_text)}) {
    ASSERT_TRUE(hasher.hex(s, a));
    ASSERT_TRUE(md5_hex(s, b));
    EXPECT_EQ(a.view(), b.view());
  }
}

TEST(PusherSignature, compares_in_constant_time_by_content_and_length) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
}

TEST(PusherSignature, decodes_hex_digests) {
  uint8_t out[kSha256Size];
  ASSERT_TRUE(decode_sha256_hex(kPrivateSig, out));
  EXPECT_EQ(out[0], 0x58);
  EXPECT_EQ(out[31], 0xa4);
  EXPECT_FALSE(decode_sha256_hex(kPrivateSig.substr(2), out));
  EXPECT_FALSE(decode_sha256_hex(std::string(64, 'x'), out));
}

TEST(PusherSocketId, accepts_digits_dot_digits) {
  for (const char* ok : {"1.1", "1234.1234", "0.0", "12345678901234567890.12345678901234567890"}) {
    EXPECT_EQ(validate_socket_id(ok), SocketIdError::none) << ok;
  }
}

TEST(PusherSocketId, refuses_anything_else) {
  EXPECT_EQ(validate_socket_id(""), SocketIdError::empty);
  for (const char* bad : {"1", "1.", ".1", "1..1", "1.1.1", "a.1", "1.a", "-1.1", "1.-1", "+1.1", " 1.1",
                          "1.1 ", "1.1\n", "1,1", "\xd9\xa1.1", "1.1x"}) {
    EXPECT_EQ(validate_socket_id(bad), SocketIdError::malformed) << bad;
  }
  EXPECT_EQ(validate_socket_id(std::string("1.1\0", 4)), SocketIdError::malformed);
}

TEST(PusherSocketId, bounds_each_part_and_the_whole) {
  EXPECT_EQ(validate_socket_id(std::string(21, '1') + ".1"), SocketIdError::too_long);
  EXPECT_EQ(validate_socket_id("1." + std::string(21, '1')), SocketIdError::too_long);
  EXPECT_EQ(validate_socket_id(std::string(100, '1')), SocketIdError::too_long);
}

TEST(PusherSignature, describes_every_error) {
  for (auto e : {AuthError::none, AuthError::missing, AuthError::malformed, AuthError::wrong_key,
                 AuthError::malformed_signature, AuthError::wrong_signature, AuthError::crypto_failure}) {
    EXPECT_GT(std::string(describe(e)).size(), 5u);
  }
  for (auto e :
       {SocketIdError::none, SocketIdError::empty, SocketIdError::too_long, SocketIdError::malformed}) {
    EXPECT_GT(std::string(describe(e)).size(), 5u);
  }
}

}  // namespace
}  // namespace windlass::channels
