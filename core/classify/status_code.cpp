#include "core/classify/status_code.h"

#include <charconv>

namespace kasi {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// 1-3 digits, the whole of `s`.
bool parse_part(std::string_view s, uint16_t& out) {
    if (s.empty() || s.size() > 3) return false;
    for (char c : s)
        if (!is_digit(c)) return false;
    unsigned v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    out = uint16_t(v);
    return true;
}

// Splits "a.b.c" into three parts; false unless there are exactly three.
bool split3(std::string_view s, std::string_view parts[3]) {
    for (int i = 0; i < 3; ++i) {
        size_t dot = i < 2 ? s.find('.') : s.npos;
        if (i < 2 && dot == s.npos) return false;
        parts[i] = s.substr(0, dot);
        s = dot == s.npos ? std::string_view() : s.substr(dot + 1);
    }
    return parts[2].find('.') == std::string_view::npos;
}

}  // namespace

std::string StatusCode::str() const {
    if (!valid()) return {};
    return std::to_string(cls) + "." + std::to_string(subject) + "." + std::to_string(detail);
}

bool parse_status(std::string_view s, StatusCode& out) {
    std::string_view p[3];
    StatusCode c;
    if (!split3(s, p) || p[0].size() != 1 || !parse_part(p[0], c.cls) ||
        !parse_part(p[1], c.subject) || !parse_part(p[2], c.detail))
        return false;
    if (c.cls != 2 && c.cls != 4 && c.cls != 5) return false;
    out = c;
    return true;
}

StatusCode find_status(std::string_view t) {
    for (size_t i = 0; i + 5 <= t.size(); ++i) {
        char c = t[i];
        if (c != '2' && c != '4' && c != '5') continue;
        if (t[i + 1] != '.') continue;
        if (i > 0) {
            char b = t[i - 1];
            if (is_digit(b) || b == '.' || b == 'v' || b == 'V' || b == '-') continue;
        }
        size_t j = i + 2, k;
        for (k = j; k < t.size() && k - j < 4 && is_digit(t[k]); ++k) {
        }
        if (k == j || k - j > 3 || k >= t.size() || t[k] != '.') continue;
        size_t m = k + 1, n;
        for (n = m; n < t.size() && n - m < 4 && is_digit(t[n]); ++n) {
        }
        if (n == m || n - m > 3) continue;
        if (n < t.size() &&
            (is_digit(t[n]) || (t[n] == '.' && n + 1 < t.size() && is_digit(t[n + 1]))))
            continue;  // an IP address or a longer dotted number
        StatusCode s;
        if (parse_status(t.substr(i, n - i), s)) return s;
    }
    return {};
}

bool StatusPattern::matches(const StatusCode& s) const {
    if (!s.valid()) return false;
    const uint16_t v[3] = {s.cls, s.subject, s.detail};
    for (int i = 0; i < 3; ++i)
        if (v[i] < lo[i] || v[i] > hi[i]) return false;
    return true;
}

bool parse_status_pattern(std::string_view s, StatusPattern& out) {
    std::string_view p[3];
    if (!split3(s, p)) return false;
    StatusPattern r;
    for (int i = 0; i < 3; ++i) {
        if (p[i] == "*") {
            r.lo[i] = 0;
            r.hi[i] = 999;
            continue;
        }
        size_t dash = p[i].find('-');
        std::string_view a = p[i].substr(0, dash);
        std::string_view b = dash == std::string_view::npos ? a : p[i].substr(dash + 1);
        if (!parse_part(a, r.lo[i]) || !parse_part(b, r.hi[i]) || r.lo[i] > r.hi[i]) return false;
    }
    if (r.lo[0] == r.hi[0] && r.lo[0] != 2 && r.lo[0] != 4 && r.lo[0] != 5) return false;
    out = r;
    return true;
}

bool CodePattern::matches(int code) const {
    if (code < 200 || code > 599) return false;
    if (range) return code >= lo && code <= hi;
    const char v[3] = {char('0' + code / 100), char('0' + code / 10 % 10), char('0' + code % 10)};
    for (int i = 0; i < 3; ++i)
        if (digits[i] != 'x' && digits[i] != v[i]) return false;
    return true;
}

bool parse_code_pattern(std::string_view s, CodePattern& out) {
    CodePattern r;
    size_t dash = s.find('-');
    if (dash != std::string_view::npos) {
        uint16_t a = 0, b = 0;
        if (dash != 3 || s.size() != 7 || !parse_part(s.substr(0, 3), a) ||
            !parse_part(s.substr(4), b) || a < 200 || b > 599 || a > b)
            return false;
        r.range = true;
        r.lo = a;
        r.hi = b;
        out = r;
        return true;
    }
    if (s.size() != 3) return false;
    for (int i = 0; i < 3; ++i) {
        char c = s[size_t(i)];
        if (c == 'X') c = 'x';
        if (c != 'x' && !is_digit(c)) return false;
        r.digits[i] = c;
    }
    if (r.digits[0] != 'x' && (r.digits[0] < '2' || r.digits[0] > '5')) return false;
    out = r;
    return true;
}

}  // namespace kasi
