#include "core/dns/dns_wire.h"

#include <fmt/format.h>

namespace kasi {

namespace {

enum RrType : uint16_t {
    t_a = 1,
    t_ns = 2,
    t_cname = 5,
    t_soa = 6,
    t_ptr = 12,
    t_mx = 15,
    t_txt = 16,
    t_aaaa = 28
};

// Reads big-endian integers and names from one packet; the first error sticks.
struct Reader {
    const uint8_t* p;
    size_t n;
    size_t off = 0;
    std::string error;

    bool fail(std::string why) {
        if (error.empty()) error = std::move(why);
        return false;
    }

    bool u16(uint16_t& v, const char* what) {
        if (off + 2 > n) return fail(fmt::format("{} past the end at offset {}", what, off));
        v = uint16_t(p[off] << 8 | p[off + 1]);
        off += 2;
        return true;
    }

    bool u32(uint32_t& v, const char* what) {
        uint16_t hi = 0, lo = 0;
        if (!u16(hi, what) || !u16(lo, what)) return false;
        v = uint32_t(hi) << 16 | lo;
        return true;
    }

    static void append_label(std::string& out, const uint8_t* l, size_t len) {
        if (!out.empty()) out += '.';
        for (size_t i = 0; i < len; ++i) {
            uint8_t c = l[i];
            if (c >= 'A' && c <= 'Z') c = uint8_t(c - 'A' + 'a');
            if (c > 0x20 && c < 0x7f && c != '.' && c != '\\')
                out += char(c);
            else
                out += fmt::format("\\{:03d}", c);
        }
    }

    // A name at `off`; `off` moves past its bytes in place (up to the first pointer).
    bool name(std::string* out) {
        size_t pos = off;
        size_t limit = off;  // a pointer must point before this (the previous jump)
        bool jumped = false;
        size_t wire_len = 0;
        for (int jumps = 0;;) {
            if (pos >= n) return fail(fmt::format("name past the end at offset {}", pos));
            uint8_t b = p[pos];
            if ((b & 0xc0) == 0xc0) {
                if (pos + 1 >= n) return fail("compression pointer past the end");
                size_t target = size_t(b & 0x3f) << 8 | p[pos + 1];
                if (!jumped) off = pos + 2;
                if (target >= limit || ++jumps > 127)
                    return fail(
                        fmt::format("compression pointer loop or forward pointer at "
                                    "offset {}",
                                    pos));
                limit = target;
                pos = target;
                jumped = true;
                continue;
            }
            if (b & 0xc0) return fail(fmt::format("bad label type 0x{:02x} at offset {}", b, pos));
            wire_len += size_t(b) + 1;
            if (wire_len > 255) return fail("name longer than 255 octets");
            if (b == 0) {
                if (!jumped) off = pos + 1;
                return true;
            }
            if (pos + 1 + b > n) return fail(fmt::format("label past the end at offset {}", pos));
            if (out) append_label(*out, p + pos + 1, b);
            pos += 1 + size_t(b);
        }
    }
};

// rdata of `type` in [start, end): exactly the shape of the type.
bool check_rdata(Reader& r, uint16_t type, size_t end) {
    size_t len = end - r.off;
    auto name_to_end = [&](const char* what) {
        if (!r.name(nullptr)) return false;
        if (r.off != end) return r.fail(fmt::format("{} does not end with its rdata", what));
        return true;
    };
    switch (type) {
        case t_a:
            if (len != 4) return r.fail(fmt::format("A rdata of {} octets", len));
            break;
        case t_aaaa:
            if (len != 16) return r.fail(fmt::format("AAAA rdata of {} octets", len));
            break;
        case t_ns:
        case t_cname:
        case t_ptr:
            return name_to_end("target name");
        case t_mx:
            if (len < 3) return r.fail(fmt::format("MX rdata of {} octets", len));
            r.off += 2;
            return name_to_end("MX exchange");
        case t_soa:
            if (!r.name(nullptr) || !r.name(nullptr)) return false;
            if (r.off + 20 != end) return r.fail("SOA rdata of the wrong length");
            break;
        case t_txt:
            if (len == 0) return r.fail("empty TXT rdata");
            while (r.off < end) {
                size_t l = r.p[r.off];
                if (r.off + 1 + l > end) return r.fail("TXT string past its rdata");
                r.off += 1 + l;
            }
            break;
        default:
            break;
    }
    r.off = end;
    return true;
}

bool check_rr_fields(Reader& r) {
    uint16_t type = 0, cls = 0, rdlen = 0;
    uint32_t ttl = 0;
    if (!r.name(nullptr) || !r.u16(type, "record type") || !r.u16(cls, "record class") ||
        !r.u32(ttl, "record TTL") || !r.u16(rdlen, "record length"))
        return false;
    if (r.off + rdlen > r.n)
        return r.fail(fmt::format("rdata length {} past the end of the packet", rdlen));
    return check_rdata(r, type, r.off + rdlen);
}

bool check_rr(Reader& r, const char* section, unsigned index) {
    if (check_rr_fields(r)) return true;
    r.error = fmt::format("{} record {}: {}", section, index, r.error);
    return false;
}

}  // namespace

DnsWireInfo dns_check_wire(const uint8_t* data, size_t len) {
    DnsWireInfo w;
    Reader r{data, len};
    uint16_t an = 0, ns = 0, ar = 0;
    if (!r.u16(w.id, "header") || !r.u16(w.flags, "header") || !r.u16(w.qdcount, "header") ||
        !r.u16(an, "header") || !r.u16(ns, "header") || !r.u16(ar, "header")) {
        w.error = "shorter than a header";
        return w;
    }
    w.header = true;
    if (w.qdcount != 1) {
        w.error = fmt::format("{} questions", w.qdcount);
        return w;
    }
    if (!r.name(&w.qname) || !r.u16(w.qtype, "question") || !r.u16(w.qclass, "question")) {
        w.error = "question: " + r.error;
        return w;
    }
    w.question = true;
    struct Section {
        const char* name;
        uint16_t count;
    };
    for (Section s : {Section{"answer", an}, Section{"authority", ns}, Section{"additional", ar}})
        for (unsigned i = 0; i < s.count; ++i)
            if (!check_rr(r, s.name, i)) {
                w.error = r.error;
                return w;
            }
    if (r.off != len) {
        w.error = fmt::format("{} octets after the last record", len - r.off);
        return w;
    }
    w.ok = true;
    return w;
}

}  // namespace kasi
