#include "core/smtp/client/dot_stuff.h"

#include <cstdint>
#include <cstring>

namespace kasi {

void append_dot_stuffed(std::string& out, std::string_view body) {
    out.reserve(out.size() + body.size() + body.size() / 64 + 8);
    bool line_start = true;
    size_t i = 0, n = body.size();
    while (i < n) {
        if (line_start && body[i] == '.') out += '.';
        const void* p = std::memchr(body.data() + i, '\n', n - i);
        size_t nl = p ? size_t(static_cast<const char*>(p) - body.data()) : n;
        if (nl == n) {  // last line without an end
            out.append(body.substr(i));
            out += "\r\n";
            i = n;
            line_start = true;
            break;
        }
        if (nl > i && body[nl - 1] == '\r') {
            out.append(body.substr(i, nl + 1 - i));
        } else {
            out.append(body.substr(i, nl - i));
            out += "\r\n";
        }
        i = nl + 1;
        line_start = true;
    }
    out += ".\r\n";
}

bool has_8bit(std::string_view body) {
    size_t i = 0, n = body.size();
    for (; i + 8 <= n; i += 8) {  // eight bytes at a time: any high bit set?
        uint64_t w;
        std::memcpy(&w, body.data() + i, 8);
        if (w & 0x8080808080808080ull) return true;
    }
    for (; i < n; ++i)
        if (static_cast<unsigned char>(body[i]) >= 0x80) return true;
    return false;
}

}  // namespace kasi
