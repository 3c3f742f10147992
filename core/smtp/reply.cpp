#include "core/smtp/reply.h"

#include <fmt/format.h>

namespace kasi {

bool starts_with_enhanced(std::string_view t) {
    // class "." subject "." detail: 1 digit, 1-3 digits, 1-3 digits
    size_t i = 0;
    if (t.size() < 6 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.') return false;
    i = 2;
    for (int part = 0; part < 2; ++part) {
        size_t start = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        if (i == start || i - start > 3) return false;
        if (part == 0) {
            if (i >= t.size() || t[i] != '.') return false;
            ++i;
        }
    }
    return i == t.size() || t[i] == ' ';
}

std::string_view default_enhanced(int code) {
    switch (code) {
        case 211:
        case 214:
        case 250:
        case 221:
            return "2.0.0";
        case 251:
        case 252:
            return "2.1.5";
        case 421:
            return "4.3.2";
        case 450:
        case 451:
            return "4.3.0";
        case 452:
            return "4.3.1";
        case 500:
        case 501:
            return "5.5.2";
        case 502:
        case 504:
            return "5.5.1";
        case 503:
            return "5.5.1";
        case 530:
            return "5.7.0";
        case 550:
            return "5.7.1";
        case 552:
            return "5.3.4";
        case 553:
            return "5.1.3";
        case 554:
            return "5.0.0";
        case 555:
            return "5.5.4";
        default:
            return code >= 500 ? "5.0.0" : code >= 400 ? "4.0.0" : "";
    }
}

void format_reply(std::string& out, int code, std::string_view enhanced, std::string_view text) {
    size_t start = 0;
    for (;;) {
        size_t nl = text.find('\n', start);
        bool last = nl == std::string_view::npos;
        auto line = text.substr(start, last ? std::string_view::npos : nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out += fmt::format("{}{}", code, last ? ' ' : '-');
        if (!enhanced.empty() && !starts_with_enhanced(line)) {
            out += enhanced;
            out += ' ';
        }
        out += line;
        out += "\r\n";
        if (last) break;
        start = nl + 1;
    }
}

}  // namespace kasi
