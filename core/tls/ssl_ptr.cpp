#include "core/tls/ssl_ptr.h"

#include <openssl/err.h>

namespace kasi {

std::string ssl_errors(const char* fallback) {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        // "error:0A000086:SSL routines::certificate verify failed" -> keep the reason part
        std::string s = buf;
        auto pos = s.rfind(':');
        if (pos != std::string::npos && pos + 1 < s.size()) s = s.substr(pos + 1);
        if (!out.empty()) out += "; ";
        out += s;
    }
    return out.empty() ? fallback : out;
}

}  // namespace kasi
