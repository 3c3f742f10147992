#include "core/feedback/mbox.h"

namespace kasi {

std::vector<std::string_view> mbox_messages(std::string_view raw, size_t max) {
    std::vector<std::string_view> out;
    if (raw.substr(0, 5) != "From " || max <= 1) {
        out.push_back(raw);
        return out;
    }
    size_t start = 0, pos = 0;
    while (out.size() + 1 < max) {
        // the next "From " at a line start right after an empty line (LF or CRLF)
        size_t at = raw.find("\nFrom ", pos);
        if (at == std::string_view::npos) break;
        pos = at + 1;
        bool after_empty = (at >= 1 && raw[at - 1] == '\n') ||
                           (at >= 3 && raw[at - 1] == '\r' && raw[at - 2] == '\n');
        if (!after_empty) continue;
        out.push_back(raw.substr(start, at + 1 - start));
        start = at + 1;
    }
    out.push_back(raw.substr(start));
    return out;
}

}  // namespace kasi
