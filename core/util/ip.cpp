#include "core/util/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "core/util/strings.h"

namespace kasi {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    std::string s(trim(text));
    if (s.find('\0') != std::string::npos) return std::nullopt;  // inet_pton would stop there
    if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    IpAddr a;
    if (inet_pton(AF_INET, s.c_str(), a.b.data()) == 1) return a;
    if (inet_pton(AF_INET6, s.c_str(), a.b.data()) == 1) {
        a.v6 = true;
        return a;
    }
    return std::nullopt;
}

IpAddr IpAddr::from_sockaddr(const sockaddr* sa) {
    IpAddr a;
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        std::memcpy(a.b.data(), &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        a.v6 = true;
        std::memcpy(a.b.data(), &in6->sin6_addr, 16);
    }
    return a.unmapped();
}

IpAddr IpAddr::unmapped() const {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!v6 || std::memcmp(b.data(), prefix, 12) != 0) return *this;
    IpAddr a;
    std::memcpy(a.b.data(), b.data() + 12, 4);
    return a;
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(v6 ? AF_INET6 : AF_INET, b.data(), buf, sizeof buf);
    return buf;
}

bool IpAddr::is_loopback() const {
    if (!v6) return b[0] == 127;
    static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(b.data(), one, 16) == 0;
}

bool IpAddr::is_private() const {
    if (is_loopback()) return true;
    if (!v6) {
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
               (b[0] == 169 && b[1] == 254);
    }
    return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    text = trim(text);
    auto slash = text.find('/');
    auto ip = IpAddr::parse(text.substr(0, slash));
    if (!ip) return std::nullopt;
    Cidr c;
    c.net = ip->unmapped();
    int max = c.net.v6 ? 128 : 32;
    c.prefix = max;
    if (slash != std::string_view::npos) {
        unsigned long long n;
        if (!parse_u64(text.substr(slash + 1), n) || n > unsigned(max)) return std::nullopt;
        c.prefix = int(n);
    }
    return c;
}

bool Cidr::contains(const IpAddr& raw) const {
    IpAddr ip = raw.unmapped();
    if (ip.v6 != net.v6) return false;
    int full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(ip.b.data(), net.b.data(), full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = uint8_t(0xff << (8 - rest));
    return (ip.b[full] & mask) == (net.b[full] & mask);
}

bool CidrList::contains(const IpAddr& ip) const {
    for (const auto& c : list_)
        if (c.contains(ip)) return true;
    return false;
}

}  // namespace kasi
