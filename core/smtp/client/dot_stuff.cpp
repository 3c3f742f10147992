#include "core/smtp/client/dot_stuff.h"

#include <cstdint>
#include <cstring>

namespace kasi {

void append_dot_stuffed(std::string& out, std::string_view body) {
    out.reserve(out.size() + body.size() + body.size() / 64 + 8);
    const char* p = body.data();
    const char* end = p + body.size();
    const char* lf = nullptr;  // the next LF at or after p (end when there is none)
    while (p < end) {
        if (*p == '.') out += '.';
        if (!lf || lf < p) {
            lf = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
            if (!lf) lf = end;
        }
        // A CR before the line's LF, other than the LF's own pair, is a line end too.
        size_t len = size_t(lf - p);
        bool paired = lf < end && len > 0 && lf[-1] == '\r';
        auto* cr = static_cast<const char*>(std::memchr(p, '\r', paired ? len - 1 : len));
        if (cr) {
            out.append(p, size_t(cr - p));
            out += "\r\n";
            p = cr + 1;
            continue;
        }
        if (paired) {
            out.append(p, len + 1);  // the line with its CRLF
        } else {                     // a bare LF, or the last line without an end
            out.append(p, len);
            out += "\r\n";
        }
        p = lf + 1;
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
