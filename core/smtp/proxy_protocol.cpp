#include "core/smtp/proxy_protocol.h"

#include <cstring>
#include <vector>

#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr char v2_sig[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr size_t v1_max = 107;  // including CRLF

bool parse_port(std::string_view s, int& out) {
    unsigned long long v;
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0') || !parse_u64(s, v) || v > 65535)
        return false;
    out = int(v);
    return true;
}

ProxyParse parse_v1(std::string_view buf, ProxyHeader& out, size_t& consumed, std::string& err) {
    size_t crlf = buf.find("\r\n");
    if (crlf == std::string_view::npos) {
        if (buf.size() >= v1_max) {
            err = "PROXY v1 line too long";
            return ProxyParse::error;
        }
        return ProxyParse::need_more;
    }
    if (crlf + 2 > v1_max) {
        err = "PROXY v1 line too long";
        return ProxyParse::error;
    }
    std::string_view line = buf.substr(0, crlf);
    std::vector<std::string_view> f;
    size_t pos = 0;
    while (pos <= line.size()) {
        size_t sp = line.find(' ', pos);
        if (sp == std::string_view::npos) sp = line.size();
        f.push_back(line.substr(pos, sp - pos));
        pos = sp + 1;
    }
    consumed = crlf + 2;
    out.version = 1;
    if (f.size() >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN") {
        out.has_addresses = false;
        return ProxyParse::ok;
    }
    if (f.size() != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6")) {
        err = "Invalid PROXY format";
        return ProxyParse::error;
    }
    auto src = IpAddr::parse(f[2]);
    auto dst = IpAddr::parse(f[3]);
    bool v6 = f[1] == "TCP6";
    if (!src || !dst || src->v6 != v6 || dst->v6 != v6 || !parse_port(f[4], out.src_port) ||
        !parse_port(f[5], out.dst_port)) {
        err = "Invalid PROXY format";
        return ProxyParse::error;
    }
    out.src = *src;
    out.dst = *dst;
    out.has_addresses = true;
    return ProxyParse::ok;
}

ProxyParse parse_v2(std::string_view buf, ProxyHeader& out, size_t& consumed, std::string& err) {
    if (buf.size() < 16) return ProxyParse::need_more;
    auto u = [&](size_t i) { return static_cast<unsigned char>(buf[i]); };
    if ((u(12) >> 4) != 2) {
        err = "unsupported PROXY version";
        return ProxyParse::error;
    }
    int cmd = u(12) & 0x0f;
    size_t len = size_t(u(14)) << 8 | u(15);
    if (buf.size() < 16 + len) return ProxyParse::need_more;
    consumed = 16 + len;
    out.version = 2;
    if (cmd == 0) {  // LOCAL: a health check from the proxy itself
        out.has_addresses = false;
        return ProxyParse::ok;
    }
    if (cmd != 1) {
        err = "unsupported PROXY command";
        return ProxyParse::error;
    }
    int fam = u(13);
    const unsigned char* a = reinterpret_cast<const unsigned char*>(buf.data()) + 16;
    if (fam == 0x11) {  // TCP over IPv4
        if (len < 12) {
            err = "PROXY v2 address block too short";
            return ProxyParse::error;
        }
        out.src = IpAddr{};
        out.dst = IpAddr{};
        std::memcpy(out.src.b.data(), a, 4);
        std::memcpy(out.dst.b.data(), a + 4, 4);
        out.src_port = a[8] << 8 | a[9];
        out.dst_port = a[10] << 8 | a[11];
        out.has_addresses = true;
    } else if (fam == 0x21) {  // TCP over IPv6
        if (len < 36) {
            err = "PROXY v2 address block too short";
            return ProxyParse::error;
        }
        out.src = IpAddr{};
        out.dst = IpAddr{};
        out.src.v6 = out.dst.v6 = true;
        std::memcpy(out.src.b.data(), a, 16);
        std::memcpy(out.dst.b.data(), a + 16, 16);
        out.src_port = a[32] << 8 | a[33];
        out.dst_port = a[34] << 8 | a[35];
        out.has_addresses = true;
    } else {
        out.has_addresses = false;  // UNSPEC, UDP, unix sockets: keep the real peer
    }
    return ProxyParse::ok;
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view buf, ProxyHeader& out, size_t& consumed,
                              std::string& err) {
    consumed = 0;
    if (buf.empty()) return ProxyParse::need_more;
    if (buf[0] == '\r') {
        size_t n = std::min(buf.size(), sizeof v2_sig);
        if (std::memcmp(buf.data(), v2_sig, n) != 0) {
            err = "Invalid PROXY format";
            return ProxyParse::error;
        }
        if (buf.size() < sizeof v2_sig) return ProxyParse::need_more;
        return parse_v2(buf, out, consumed, err);
    }
    constexpr std::string_view v1_prefix = "PROXY ";
    size_t n = std::min(buf.size(), v1_prefix.size());
    if (buf.substr(0, n) != v1_prefix.substr(0, n)) {
        err = "Invalid PROXY format";
        return ProxyParse::error;
    }
    if (buf.size() < v1_prefix.size()) return ProxyParse::need_more;
    return parse_v1(buf, out, consumed, err);
}

}  // namespace kasi
