#include "core/suppression/suppression_arena.h"

#include <cstring>

namespace kasi {

uint64_t TextArena::alloc(size_t len) {
    if (len < free_.size() && !free_[len].empty()) {
        uint64_t off = free_[len].back();
        free_[len].pop_back();
        free_bytes_ -= len;
        return off;
    }
    if (used_ + len > chunk_size_) {
        chunks_.push_back(std::make_unique_for_overwrite<uint8_t[]>(chunk_size_));
        used_ = 0;
    }
    uint64_t off = (uint64_t(chunks_.size() - 1) << chunk_bits_) | used_;
    used_ += len;
    return off;
}

void TextArena::release(uint64_t off, size_t len) {
    if (free_.size() <= len) free_.resize(len + 1);
    free_[len].push_back(off);
    free_bytes_ += len;
}

namespace {

constexpr size_t uuid_len = 36;

int hex_value(char c, bool& lower, bool& upper) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return lower = true, c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return upper = true, c - 'A' + 10;
    return -1;
}

// "8-4-4-4-12" hex, one case throughout, into 16 bytes.
bool pack_uuid(std::string_view s, uint8_t out[16], bool& lower) {
    if (s.size() < uuid_len) return false;
    bool lo = false, up = false;
    int n = 0, half = -1;
    for (size_t i = 0; i < uuid_len; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
            continue;
        }
        int v = hex_value(s[i], lo, up);
        if (v < 0) return false;
        if (half < 0) {
            half = v;
        } else {
            out[n++] = uint8_t(half << 4 | v);
            half = -1;
        }
    }
    lower = lo;
    return !(lo && up);
}

void unpack_uuid(const uint8_t* in, bool lower, std::string& out) {
    const char* digits = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += digits[in[i] >> 4];
        out += digits[in[i] & 15];
    }
}

}  // namespace

void write_varint(std::string& out, uint64_t v) {
    for (; v >= 0x80; v >>= 7) out += char((v & 0x7f) | 0x80);
    out += char(v);
}

size_t read_varint(const uint8_t* p, size_t& value) {
    value = 0;
    size_t i = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint8_t b = p[i++];
        value |= size_t(b & 0x7f) << shift;
        if (!(b & 0x80)) return i;
    }
}

void encode_text(std::string& out, const TextKey& key, std::string_view event) {
    write_varint(out, key.scope);
    write_varint(out, key.domain);
    write_varint(out, key.local.size());
    out += key.local;
    uint8_t uuid[16];
    bool lower = false;
    if (pack_uuid(event, uuid, lower)) {
        std::string_view suffix = event.substr(uuid_len);
        out += char(0x80 | suffix.size() << 1 | (lower ? 1 : 0));
        out.append(reinterpret_cast<const char*>(uuid), 16);
        out += suffix;
    } else {
        out += char(event.size());
        out += event;
    }
}

DecodedText decode_text(const uint8_t* p) {
    DecodedText d;
    size_t v = 0, k = read_varint(p, v);
    d.key.scope = uint32_t(v);
    k += read_varint(p + k, v);
    d.key.domain = uint32_t(v);
    k += read_varint(p + k, v);
    d.key.local = std::string_view(reinterpret_cast<const char*>(p + k), v);
    k += v;
    uint8_t h = p[k];
    d.size = k + 1 + (h < 0x80 ? h : 16 + ((h & 0x7f) >> 1));
    return d;
}

std::string decode_event(const uint8_t* p) {
    DecodedText d = decode_text(p);
    const uint8_t* e = reinterpret_cast<const uint8_t*>(d.key.local.data() + d.key.local.size());
    uint8_t h = *e++;
    std::string out;
    if (h < 0x80) {
        out.assign(reinterpret_cast<const char*>(e), h);
        return out;
    }
    unpack_uuid(e, h & 1, out);
    out.append(reinterpret_cast<const char*>(e + 16), (h & 0x7f) >> 1);
    return out;
}

}  // namespace kasi
