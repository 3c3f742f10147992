// The HAProxy PROXY protocol header parser (core/smtp/proxy_protocol.h), v1 and v2, on
// the first bytes of a connection. Properties: on ok the header length is within the
// buffer; an error says why; and a parse is stable under more data: any prefix shorter
// than an ok header asks for more or fails, never succeeds with another length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/smtp/proxy_protocol.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view buf(reinterpret_cast<const char*>(data), size);
    kasi::ProxyHeader h;
    size_t consumed = 0;
    std::string err;
    auto r = kasi::parse_proxy_header(buf, h, consumed, err);
    if (r == kasi::ProxyParse::error) FUZZ_CHECK(!err.empty());
    if (r != kasi::ProxyParse::ok) return 0;
    FUZZ_CHECK(consumed > 0 && consumed <= size);
    FUZZ_CHECK(h.version == 1 || h.version == 2);
    if (h.has_addresses) {
        FUZZ_CHECK(h.src_port >= 0 && h.src_port <= 65535);
        FUZZ_CHECK(h.dst_port >= 0 && h.dst_port <= 65535);
    }
    for (size_t n = 0; n < consumed; ++n) {
        kasi::ProxyHeader h2;
        size_t c2 = 0;
        std::string e2;
        auto r2 = kasi::parse_proxy_header(buf.substr(0, n), h2, c2, e2);
        FUZZ_CHECK(r2 != kasi::ProxyParse::ok);
    }
    return 0;
}
