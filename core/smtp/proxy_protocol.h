// The HAProxy PROXY protocol, versions 1 (text) and 2 (binary), as a pure parser
// (https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt). The server accepts a
// header only from connection.ini [haproxy] hosts, before anything else on the connection
// (and before TLS on the smtps port); from anyone else a PROXY line is refused.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/util/ip.h"

namespace kasi {

struct ProxyHeader {
    bool has_addresses = false;  // false: LOCAL/UNKNOWN/unsupported family: keep the real peer
    IpAddr src, dst;
    int src_port = 0, dst_port = 0;
    int version = 0;
};

enum class ProxyParse { need_more, ok, error };

// Parses a header at the start of `buf`. On ok, `consumed` is its length; on error, `err`
// says what is wrong.
ProxyParse parse_proxy_header(std::string_view buf, ProxyHeader& out, size_t& consumed,
                              std::string& err);

}  // namespace kasi
