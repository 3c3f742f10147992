// IP addresses and CIDR blocks, IPv4 and IPv6, for ACLs (relay_acl_allow, PROXY hosts,
// limit exemptions). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 blocks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace kasi {

struct IpAddr {
    bool v6 = false;
    std::array<uint8_t, 16> b{};  // IPv4 uses the first 4 bytes

    static std::optional<IpAddr> parse(std::string_view text);
    static IpAddr from_sockaddr(const sockaddr* sa);
    std::string str() const;
    bool is_loopback() const;
    bool is_private() const;  // RFC 1918, RFC 4193, loopback, link-local
    IpAddr unmapped() const;  // ::ffff:a.b.c.d -> a.b.c.d
    bool operator==(const IpAddr&) const = default;
};

struct Cidr {
    IpAddr net;
    int prefix = 0;

    // "a.b.c.d", "a.b.c.d/n", "::1", "2001:db8::/32". A missing mask means a host route.
    static std::optional<Cidr> parse(std::string_view text);
    bool contains(const IpAddr& ip) const;
};

class CidrList {
  public:
    void add(const Cidr& c) { list_.push_back(c); }
    bool contains(const IpAddr& ip) const;
    bool empty() const { return list_.empty(); }

  private:
    std::vector<Cidr> list_;
};

}  // namespace kasi
