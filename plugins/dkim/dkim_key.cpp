#include "plugins/dkim/dkim_key.h"

#include <fmt/format.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/util/base64.h"
#include "core/util/file.h"

namespace kasi::dkim {

namespace {

std::string strip_ws(std::string_view s) {
    std::string out;
    for (char c : s)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out.push_back(c);
    return out;
}

}  // namespace

std::shared_ptr<const PrivateKey> PrivateKey::adopt(PkeyPtr k, std::string& err) {
    int id = EVP_PKEY_get_base_id(k.get());
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(k.get());
        if (bits < 1024) {
            err = fmt::format("RSA key of {} bits: DKIM needs at least 1024 (RFC 8301)", bits);
            return nullptr;
        }
        return std::make_shared<const PrivateKey>(Token{}, std::move(k), KeyType::rsa, bits);
    }
    if (id == EVP_PKEY_ED25519)
        return std::make_shared<const PrivateKey>(Token{}, std::move(k), KeyType::ed25519, 256);
    err = "not an RSA or Ed25519 private key";
    return nullptr;
}

std::shared_ptr<const PrivateKey> PrivateKey::from_text(std::string_view text, std::string& err) {
    if (text.find("-----BEGIN") != std::string_view::npos) {
        BioPtr bio(BIO_new_mem_buf(text.data(), int(text.size())));
        PkeyPtr k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
        if (!k) {
            err = "cannot read the PEM private key: " + ssl_errors("bad PEM data");
            return nullptr;
        }
        return adopt(std::move(k), err);
    }
    auto seed = base64_decode(strip_ws(text));
    if (!seed || seed->size() != 32) {
        err = "neither a PEM private key nor a base64 Ed25519 seed of 32 bytes";
        return nullptr;
    }
    PkeyPtr k(EVP_PKEY_new_raw_private_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed->data()), 32));
    if (!k) {
        err = "bad Ed25519 seed: " + ssl_errors("rejected");
        return nullptr;
    }
    return adopt(std::move(k), err);
}

std::shared_ptr<const PrivateKey> PrivateKey::load(const std::string& path, std::string& err,
                                                   std::string& warn) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        err = fmt::format("cannot read the key: {}", strerror(errno));
        return nullptr;
    }
    std::string text;
    if (!read_whole_file(path, text)) {
        err = fmt::format("cannot read the key: {}", strerror(errno));
        return nullptr;
    }
    std::string why;
    auto key = from_text(text, why);
    if (!key) {
        err = why;
        return nullptr;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH))
        warn = fmt::format("the private key is readable by {} (chmod 600 it)",
                           (st.st_mode & S_IROTH) ? "everyone" : "its group");
    else if (key->type() == KeyType::rsa && key->bits() < 2048)
        warn =
            fmt::format("{}: RSA key of {} bits; 2048 is the usual minimum now", path, key->bits());
    return key;
}

std::shared_ptr<const PrivateKey> PrivateKey::generate(KeyType t, int bits, std::string& err) {
    PkeyCtxPtr ctx(
        EVP_PKEY_CTX_new_id(t == KeyType::rsa ? EVP_PKEY_RSA : EVP_PKEY_ED25519, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
        (t == KeyType::rsa && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) <= 0) ||
        EVP_PKEY_keygen(ctx.get(), &raw) <= 0) {
        err = "key generation failed: " + ssl_errors("unknown error");
        return nullptr;
    }
    return adopt(PkeyPtr(raw), err);
}

std::string_view PrivateKey::algorithm() const {
    return type_ == KeyType::rsa ? "rsa-sha256" : "ed25519-sha256";
}

std::string PrivateKey::dns_record() const {
    if (type_ == KeyType::ed25519) {
        unsigned char pub[32];
        size_t len = sizeof pub;
        EVP_PKEY_get_raw_public_key(key_.get(), pub, &len);
        return "v=DKIM1; k=ed25519; p=" +
               base64_encode(std::string_view(reinterpret_cast<char*>(pub), len));
    }
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key_.get(), &der);
    std::string p = len > 0 ? base64_encode(std::string_view(reinterpret_cast<char*>(der), len))
                            : std::string();
    OPENSSL_free(der);
    return "v=DKIM1; k=rsa; p=" + p;
}

std::string PrivateKey::pem() const {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, size_t(n));
}

std::optional<std::string> PrivateKey::sign(std::string_view data) const {
    MdCtxPtr md(EVP_MD_CTX_new());
    if (!md) return std::nullopt;
    std::string sig;
    size_t len = 0;
    if (type_ == KeyType::rsa) {
        if (EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key_.get()) <= 0 ||
            EVP_DigestSignUpdate(md.get(), data.data(), data.size()) <= 0 ||
            EVP_DigestSignFinal(md.get(), nullptr, &len) <= 0)
            return std::nullopt;
        sig.resize(len);
        if (EVP_DigestSignFinal(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len) <= 0)
            return std::nullopt;
    } else {
        // RFC 8463 §3: Ed25519 (pure) signs the SHA-256 hash of the header data.
        unsigned char hash[SHA256_DIGEST_LENGTH];
        SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), hash);
        if (EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key_.get()) <= 0)
            return std::nullopt;
        sig.resize(64);
        len = sig.size();
        if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, hash,
                           sizeof hash) <= 0)
            return std::nullopt;
    }
    sig.resize(len);
    return sig;
}

}  // namespace kasi::dkim
