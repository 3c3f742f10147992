#include "core/spool/record.h"

#include <cstring>

#include "core/util/crc32c.h"

namespace kasi {

namespace {

void put_u32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v);
    p[1] = uint8_t(v >> 8);
    p[2] = uint8_t(v >> 16);
    p[3] = uint8_t(v >> 24);
}

uint32_t get_u32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

void encode_record_header(uint8_t* hdr, RecordType type, std::string_view a, std::string_view b,
                          std::string_view c) {
    std::memcpy(hdr, "KSPL", 4);
    hdr[4] = uint8_t(type);
    hdr[5] = 1;
    hdr[6] = hdr[7] = 0;
    put_u32(hdr + 8, uint32_t(a.size() + b.size() + c.size()));
    uint32_t crc = crc32c(0, a.data(), a.size());
    crc = crc32c(crc, b.data(), b.size());
    crc = crc32c(crc, c.data(), c.size());
    put_u32(hdr + 12, crc);
    put_u32(hdr + 16, crc32c(0, hdr, 16));
}

ScanResult scan_records(std::string_view data, const std::function<void(const RecordView&)>& fn) {
    ScanResult r;
    uint64_t off = 0;
    auto* base = reinterpret_cast<const uint8_t*>(data.data());
    while (off < data.size()) {
        if (data.size() - off < record_header_size) {
            r.problem = "truncated record header";
            break;
        }
        const uint8_t* h = base + off;
        if (std::memcmp(h, "KSPL", 4) != 0) {
            r.problem = "bad magic";
            break;
        }
        if (get_u32(h + 16) != crc32c(0, h, 16)) {
            r.problem = "header checksum mismatch";
            break;
        }
        uint32_t len = get_u32(h + 8);
        if (h[5] != 1 || (h[4] != 1 && h[4] != 2)) {
            r.problem = "unknown record type or version";
            break;
        }
        if (data.size() - off - record_header_size < len) {
            r.problem = "truncated record payload";
            break;
        }
        std::string_view payload = data.substr(off + record_header_size, len);
        if (crc32c(0, payload.data(), payload.size()) != get_u32(h + 12)) {
            r.problem = "payload checksum mismatch";
            break;
        }
        fn(RecordView{RecordType(h[4]), off, payload});
        off += record_header_size + len;
    }
    r.valid_end = off;
    r.torn = off < data.size();
    return r;
}

bool split_message_payload(std::string_view payload, std::string_view& envelope,
                           std::string_view& body) {
    if (payload.size() < 4) return false;
    uint32_t n = get_u32(reinterpret_cast<const uint8_t*>(payload.data()));
    if (payload.size() - 4 < n) return false;
    envelope = payload.substr(4, n);
    body = payload.substr(4 + n);
    return true;
}

}  // namespace kasi
