#include "core/feedback/complaint_values.h"

#include <algorithm>

#include "core/util/ip.h"
#include "core/util/strings.h"

namespace kasi::arf {

namespace {

// `s` when it is one bare address ("local@domain"), lower-cased; "" otherwise. A source
// route ("@relay:user@domain") is dropped.
std::string plain_address(std::string_view s) {
    s = trim(s);
    if (!s.empty() && s.front() == '@' && s.find(':') != std::string_view::npos)
        s.remove_prefix(s.find(':') + 1);
    if (s.empty() || s.size() > 320) return {};
    auto at = s.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return {};
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f ||
            std::string_view("<>(),;\"\\").find(ch) != std::string_view::npos)
            return {};
    }
    return to_lower(s);
}

}  // namespace

// One line: control characters become blanks, runs of blanks one space, trimmed, capped.
std::string clean(std::string_view v, size_t max) {
    std::string out;
    out.reserve(std::min(v.size(), max));
    bool blank = false;
    for (char ch : v) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f) {
            blank = !out.empty();
            continue;
        }
        if (out.size() + (blank ? 2 : 1) > max) break;
        if (blank) out += ' ';
        blank = false;
        out += ch;
    }
    return out;
}

// The first mailbox of an address header or report field: the address in angle brackets
// ("Name <a@b>"; it wins over a display name that looks like an address), else the first
// word that is an address. Quoted strings and comments are skipped; a "rfc822;" type and a
// "mailto:" prefix are removed.
std::string mailbox_of(std::string_view value) {
    value = trim(value);
    auto semi = value.find(';');
    if (semi != std::string_view::npos && semi < 16 &&
        value.substr(0, semi).find('@') == std::string_view::npos)
        value = trim(value.substr(semi + 1));
    if (istarts_with(value, "mailto:")) value.remove_prefix(7);
    bool quoted = false;
    int comment = 0;
    for (size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (quoted) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                quoted = false;
        } else if (comment > 0) {
            comment += c == '(' ? 1 : c == ')' ? -1 : 0;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            comment = 1;
        } else if (c == '<') {
            auto close = value.find('>', i);
            if (close == std::string_view::npos) break;
            auto a = plain_address(value.substr(i + 1, close - i - 1));
            if (!a.empty()) return a;
            i = close;
        }
    }
    for (const auto& word : split_list(value, " \t,;<>()\"")) {
        auto a = plain_address(word);
        if (!a.empty()) return a;
    }
    return {};
}

// "abuse", "auth-failure", ...: the first word, lower-cased; "abuse" when there is none.
std::string feedback_type_of(std::string_view v) {
    v = trim(v);
    std::string t;
    for (char c : v) {
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
        if (!word || t.size() >= 32) break;
        t += c;
    }
    return t.empty() ? std::string("abuse") : to_lower(t);
}

// An IP address as written (brackets and an "IPv6:" tag removed), "" if it is not one.
std::string ip_of(std::string_view v) {
    v = trim(v);
    v = v.substr(0, v.find_first_of(" \t,;"));
    if (v.size() >= 2 && v.front() == '[' && v.back() == ']') v = v.substr(1, v.size() - 2);
    if (istarts_with(v, "IPv6:")) v.remove_prefix(5);
    if (v.empty() || v.size() > 64 || !IpAddr::parse(v)) return {};
    return std::string(v);
}

// Domain names in a field ("example.net", "a.example, b.example"), lower-cased.
void add_domains(std::vector<std::string>& out, std::string_view v) {
    for (auto& d : split_list(v, " \t,;")) {
        while (!d.empty() && d.back() == '.') d.pop_back();
        bool ok = !d.empty() && d.size() <= 253;
        for (char c : d)
            ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_');
        auto l = to_lower(d);
        if (ok && out.size() < kMaxDomains && std::find(out.begin(), out.end(), l) == out.end())
            out.push_back(std::move(l));
    }
}

void add_recipient(ComplaintReport& r, std::string a) {
    if (a.empty() || r.recipients.size() >= kMaxRecipients) return;
    if (std::find(r.recipients.begin(), r.recipients.end(), a) == r.recipients.end())
        r.recipients.push_back(std::move(a));
}

void add_kasi_header(ComplaintReport& r, std::string_view name, std::string_view value) {
    if (istarts_with(name, "X-Kasi-") && r.original_kasi_headers.size() < kMaxKasiHeaders)
        r.original_kasi_headers.emplace_back(clean(name, 76), clean(value));
}

ComplaintReport not_complaint(std::string why) {
    ComplaintReport r;
    r.why = std::move(why);
    return r;
}

ComplaintReport complaint_of(std::string_view format) {
    ComplaintReport r;
    r.kind = ComplaintReport::Kind::complaint;
    r.format = std::string(format);
    return r;
}

}  // namespace kasi::arf
