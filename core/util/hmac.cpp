#include "core/util/hmac.h"

#include <openssl/crypto.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <cctype>

#include "core/util/base64.h"

namespace kasi {

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
    return std::string(reinterpret_cast<char*>(out), n);
}

std::string sha256(std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(out), n);
}

bool equal_ct(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base32_lower(std::string_view in) {
    static const char* alpha = "abcdefghijklmnopqrstuvwxyz234567";
    std::string out;
    uint32_t buf = 0;
    int bits = 0;
    for (unsigned char c : in) {
        buf = (buf << 8) | c;
        bits += 8;
        while (bits >= 5) {
            out += alpha[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += alpha[(buf << (5 - bits)) & 31];
    return out;
}

std::optional<std::string> base32_lower_decode(std::string_view in) {
    std::string out;
    uint32_t buf = 0;
    int bits = 0;
    for (char ch : in) {
        int v;
        char c = char(std::tolower(static_cast<unsigned char>(ch)));
        if (c >= 'a' && c <= 'z')
            v = c - 'a';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return std::nullopt;
        buf = (buf << 5) | uint32_t(v);
        bits += 5;
        if (bits >= 8) {
            out += char((buf >> (bits - 8)) & 255);
            bits -= 8;
        }
    }
    if (bits >= 5 || (buf & ((1u << bits) - 1)) != 0) return std::nullopt;  // not canonical
    return out;
}

std::string base64url(std::string_view bytes) {
    std::string s = base64_encode(bytes);
    while (!s.empty() && s.back() == '=') s.pop_back();
    for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return s;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    std::string s(text);
    for (char& c : s) {
        if (c == '+' || c == '/' || c == '=') return std::nullopt;
        c = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (s.size() % 4) s += '=';
    return base64_decode(s);
}

}  // namespace kasi
