// A DKIM private key (RSA or Ed25519): loading from a file with the checks an operator
// needs (clear errors naming the file, a warning when others can read it), the TXT record
// to publish, signing, and generating new keys (kasictl dkim keygen).
//
// Accepted key files: PEM (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY", RSA or
// Ed25519, as openssl and Haraka's dkim_key_gen.sh write them) and, for Ed25519, the
// base64 32-byte seed that dkimpy and rspamd use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/tls/ssl_ptr.h"

namespace kasi::dkim {

enum class KeyType { rsa, ed25519 };

class PrivateKey {
  public:
    // Loads `path`. On failure returns null and puts the reason in `err` (without the path);
    // `warn` gets a
    // warning (group/world readable, RSA shorter than 2048 bits) or stays empty.
    static std::shared_ptr<const PrivateKey> load(const std::string& path, std::string& err,
                                                  std::string& warn);
    static std::shared_ptr<const PrivateKey> from_text(std::string_view text, std::string& err);
    // A new key: RSA of `bits`, or Ed25519.
    static std::shared_ptr<const PrivateKey> generate(KeyType t, int bits, std::string& err);

    KeyType type() const { return type_; }
    int bits() const { return bits_; }
    std::string_view algorithm() const;  // "rsa-sha256" or "ed25519-sha256"
    // The DKIM key record to publish: "v=DKIM1; k=rsa; p=...".
    std::string dns_record() const;
    std::string pem() const;  // PKCS#8 PEM, for writing a generated key
    // Signs the header hash input: RSASSA-PKCS1-v1_5 over SHA-256(data), or Ed25519 over
    // SHA-256(data) (RFC 8463). Thread-safe. Returns the raw signature, or nullopt.
    std::optional<std::string> sign(std::string_view data) const;

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    PrivateKey(Token, PkeyPtr k, KeyType t, int bits) : key_(std::move(k)), type_(t), bits_(bits) {}

  private:
    static std::shared_ptr<const PrivateKey> adopt(PkeyPtr k, std::string& err);
    PkeyPtr key_;
    KeyType type_;
    int bits_;
};

}  // namespace kasi::dkim
