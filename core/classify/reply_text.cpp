#include "core/classify/reply_text.h"

namespace kasi {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Appends `s` folded (lower case, one space per white-space run, no NUL) to `out`,
// stopping at `cap` bytes.
void fold_into(std::string_view s, std::string& out, size_t cap) {
    for (char c : s) {
        if (out.size() >= cap) return;
        if (c == '\0') continue;
        if (is_space(c)) {
            if (!out.empty() && out.back() != ' ') out += ' ';
            continue;
        }
        out += (c >= 'A' && c <= 'Z') ? char(c + 32) : c;
    }
}

// "550-5.1.1 rest" -> "rest" when the line starts with `code` followed by '-' or ' '.
std::string_view strip_continuation(std::string_view line, std::string_view code) {
    if (code.empty() || line.size() < 4 || line.substr(0, 3) != code) return line;
    if (line[3] != '-' && line[3] != ' ') return line;
    line.remove_prefix(4);
    size_t i = 0;
    while (i < line.size() && (is_digit(line[i]) || line[i] == '.')) ++i;
    if (i >= 5 && i < line.size() && line[i] == ' ') line.remove_prefix(i + 1);
    return line;
}

}  // namespace

std::string normalize_reply_text(std::string_view raw, size_t cap) {
    std::string out;
    out.reserve(raw.size() < cap ? raw.size() : cap);
    std::string_view code;
    if (raw.size() >= 4 && is_digit(raw[0]) && is_digit(raw[1]) && is_digit(raw[2]) &&
        raw[3] == '-')
        code = raw.substr(0, 3);
    bool first = true;
    while (!raw.empty() && out.size() < cap) {
        size_t eol = raw.find_first_of("\r\n");
        std::string_view line = raw.substr(0, eol);
        raw = eol == std::string_view::npos ? std::string_view() : raw.substr(eol + 1);
        if (!first) line = strip_continuation(line, code);
        first = false;
        if (!out.empty() && out.back() != ' ' && out.size() < cap) out += ' ';
        fold_into(line, out, cap);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

std::string normalize_phrase(std::string_view phrase) {
    std::string out;
    for (char c : phrase) {
        if (c == '\0') continue;
        if (is_space(c)) {
            if (out.empty() || out.back() != ' ') out += ' ';
            continue;
        }
        out += (c >= 'A' && c <= 'Z') ? char(c + 32) : c;
    }
    return out;
}

}  // namespace kasi
