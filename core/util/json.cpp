#include "core/util/json.h"

#include <fmt/format.h>

namespace kasi {

namespace {

// Length of a valid UTF-8 sequence starting at s[i], or 0.
size_t utf8_len(std::string_view s, size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c >= 0xF5) return 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
    return n;
}

}  // namespace

void json_escape(std::string& out, std::string_view s) {
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
        size_t run = i;  // copy plain ASCII in one go
        while (run < s.size() && static_cast<unsigned char>(s[run]) >= 0x20 &&
               static_cast<unsigned char>(s[run]) < 0x80 && s[run] != '"' && s[run] != '\\')
            ++run;
        if (run > i) {
            out.append(s.substr(i, run - i));
            i = run;
            if (i == s.size()) break;
        }
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            switch (c) {
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                default:
                    out += fmt::format("\\u{:04x}", c);
            }
        } else if (c < 0x80) {
            out += char(c);
        } else if (size_t n = utf8_len(s, i)) {
            out.append(s.substr(i, n));
            i += n - 1;
        } else {
            out += "\\ufffd";
        }
    }
    out += '"';
}

void JsonObject::key(std::string_view k) {
    if (s_.size() > 1) s_ += ',';
    json_escape(s_, k);
    s_ += ':';
}

JsonObject& JsonObject::str(std::string_view k, std::string_view v) {
    key(k);
    json_escape(s_, v);
    return *this;
}

JsonObject& JsonObject::num(std::string_view k, int64_t v) {
    key(k);
    s_ += std::to_string(v);
    return *this;
}

JsonObject& JsonObject::real(std::string_view k, double v) {
    key(k);
    s_ += fmt::format("{:.3f}", v);
    return *this;
}

JsonObject& JsonObject::boolean(std::string_view k, bool v) {
    key(k);
    s_ += v ? "true" : "false";
    return *this;
}

JsonObject& JsonObject::raw(std::string_view k, std::string_view json) {
    key(k);
    s_ += json;
    return *this;
}

std::string JsonObject::done() {
    s_ += '}';
    return std::move(s_);
}

}  // namespace kasi
