#include "core/mime/transfer_decode.h"

#include "core/util/strings.h"

namespace kasi::mime {

namespace {

int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet, seen in the wild
    if (c == '/' || c == '_') return 63;
    return -1;
}

int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

std::string decode_base64_lenient(std::string_view in, size_t max_out, bool& truncated) {
    std::string out;
    out.reserve(std::min(max_out, in.size() * 3 / 4 + 3));
    unsigned acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        if (c == '=') {  // padding ends the group; a later group may follow (concatenated)
            bits = 0;
            acc = 0;
            continue;
        }
        int v = b64_value(c);
        if (v < 0) continue;
        acc = (acc << 6) | unsigned(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out.size() >= max_out) {
                truncated = true;
                return out;
            }
            out += char((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string decode_quoted_printable(std::string_view in, size_t max_out, bool& truncated) {
    std::string out;
    out.reserve(std::min(max_out, in.size()));
    for (size_t i = 0; i < in.size(); ++i) {
        if (out.size() >= max_out) {
            truncated = true;
            return out;
        }
        char c = in[i];
        if (c != '=') {
            out += c;
            continue;
        }
        // "=" then blanks then a line end: a soft line break
        size_t j = i + 1;
        while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
        if (j < in.size() && (in[j] == '\r' || in[j] == '\n')) {
            if (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n') ++j;
            i = j;
            continue;
        }
        if (j == in.size()) {
            i = j;
            continue;
        }
        int hi = i + 1 < in.size() ? hex_value(static_cast<unsigned char>(in[i + 1])) : -1;
        int lo = i + 2 < in.size() ? hex_value(static_cast<unsigned char>(in[i + 2])) : -1;
        if (hi >= 0 && lo >= 0) {
            out += char(hi * 16 + lo);
            i += 2;
        } else {
            out += c;  // a lone '=' stays (RFC 2045 §6.7 note 1)
        }
    }
    return out;
}

std::string decode_transfer(std::string_view encoding, std::string_view in, size_t max_out,
                            bool& truncated) {
    auto enc = trim(encoding);
    if (iequals(enc, "base64")) return decode_base64_lenient(in, max_out, truncated);
    if (iequals(enc, "quoted-printable")) return decode_quoted_printable(in, max_out, truncated);
    if (in.size() > max_out) {
        truncated = true;
        return std::string(in.substr(0, max_out));
    }
    return std::string(in);
}

}  // namespace kasi::mime
