#include "core/smtp/reply.h"

#include <fmt/format.h>

#include <algorithm>

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

namespace {

// The longest prefix of `s` of at most `n` bytes that does not end inside a UTF-8 sequence.
size_t utf8_cut(std::string_view s, size_t n) {
    if (n >= s.size()) return s.size();
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return n;
}

// Where to end a piece of `body` that must hold at most `room` bytes: at the last space
// in the second half of the room if there is one (that space is dropped: `skip` = 1),
// else as much as fits.
size_t fold_at(std::string_view body, size_t room, size_t& skip) {
    skip = 0;
    if (body.size() <= room) return body.size();
    size_t cut = utf8_cut(body, room);
    size_t sp = body.rfind(' ', cut);
    if (sp != std::string_view::npos && sp > room / 2) {
        skip = 1;
        return sp;
    }
    return cut > 0 ? cut : std::min(body.size(), room);  // room < one character: bytes
}

void append_line(std::string& out, int code, bool more, std::string_view enh,
                 std::string_view text) {
    out += fmt::format("{}{}", code, more ? '-' : ' ');
    if (!enh.empty()) {
        out += enh;
        out += ' ';
    }
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        out += (u < 32 && c != '\t') || u == 127 ? ' ' : c;
    }
    out += "\r\n";
}

}  // namespace

void cap_reply_text(std::string& text) {
    if (text.size() <= max_reply_text) return;
    text.resize(utf8_cut(text, max_reply_text - 3));
    text += "...";
}

void format_reply(std::string& out, int code, std::string_view enhanced, std::string_view text) {
    size_t start = 0;
    for (;;) {
        size_t nl = text.find('\n', start);
        bool last = nl == std::string_view::npos;
        auto line = text.substr(start, last ? std::string_view::npos : nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        // A line that begins with its own enhanced code keeps it; its folded pieces
        // repeat it. Other lines get `enhanced` on every piece.
        std::string_view first_enh = enhanced, more_enh = enhanced;
        if (!enhanced.empty() && starts_with_enhanced(line)) {
            first_enh = {};
            more_enh = line.substr(0, line.find(' '));
        }
        bool first = true;
        do {
            std::string_view enh = first ? first_enh : more_enh;
            size_t room = max_reply_line - 6 - (enh.empty() ? 0 : enh.size() + 1);  // "550-", CRLF
            size_t skip = 0;
            size_t n = fold_at(line, room, skip);
            auto piece = line.substr(0, n);
            line.remove_prefix(n + skip);
            append_line(out, code, !(last && line.empty()), enh, piece);
            first = false;
        } while (!line.empty());
        if (last) break;
        start = nl + 1;
    }
}

}  // namespace kasi
