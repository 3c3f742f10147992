#include "core/smtp/address.h"

#include "core/util/ip.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

bool is_atext(unsigned char c, bool utf8) {
    if (c >= 0x80) return utf8;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(char(c)) != std::string_view::npos;
}

// Dot-string: atoms separated by single dots.
bool valid_dot_string(std::string_view s, bool utf8) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '.') {
            if (s[i + 1] == '.') return false;
        } else if (!is_atext(static_cast<unsigned char>(s[i]), utf8)) {
            return false;
        }
    }
    return true;
}

// Quoted-string: printable ASCII (or UTF-8), with backslash escapes.
bool valid_quoted(std::string_view s, bool utf8) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            if (++i + 1 >= s.size()) return false;
            unsigned char e = static_cast<unsigned char>(s[i]);
            if (e < 0x20 || e == 0x7f || (e >= 0x80 && !utf8)) return false;
        } else if (c == '"') {
            return false;
        } else if (c >= 0x80 ? !utf8 : (c < 0x20 || c == 0x7f)) {
            return false;
        }
    }
    return true;
}

bool valid_domain(std::string_view d, bool utf8) {
    if (d.empty() || d.size() > 255) return false;
    size_t start = 0;
    while (start <= d.size()) {
        size_t dot = d.find('.', start);
        if (dot == std::string_view::npos) dot = d.size();
        auto label = d.substr(start, dot - start);
        if (label.empty() || label.size() > 63) return false;
        if (label.front() == '-' || label.back() == '-') return false;
        for (unsigned char c : label) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || (c >= 0x80 && utf8);
            if (!ok) return false;
        }
        start = dot + 1;
    }
    return true;
}

// Only the characters of an address: IpAddr::parse trims blanks and inet_pton stops at a
// NUL, so "[192.0.2.7\r]" would pass and be kept as written.
bool literal_chars(std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF.:") == std::string_view::npos;
}

bool valid_literal(std::string_view d) {
    if (d.size() < 3 || d.front() != '[' || d.back() != ']') return false;
    auto inner = d.substr(1, d.size() - 2);
    bool v6 = istarts_with(inner, "IPv6:");
    if (!literal_chars(v6 ? inner.substr(5) : inner)) return false;
    if (v6) {
        auto ip = IpAddr::parse(inner.substr(5));
        return ip && ip->v6;
    }
    auto ip = IpAddr::parse(inner);
    return ip && !ip->v6;
}

// Finds the '@' that separates local part and domain, skipping a quoted local part.
size_t find_at(std::string_view mb) {
    if (!mb.empty() && mb.front() == '"') {
        for (size_t i = 1; i < mb.size(); ++i) {
            if (mb[i] == '\\') {
                ++i;
            } else if (mb[i] == '"') {
                return (i + 1 < mb.size() && mb[i + 1] == '@') ? i + 1 : std::string_view::npos;
            }
        }
        return std::string_view::npos;
    }
    return mb.rfind('@');
}

bool has_non_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

}  // namespace

std::string Address::str() const {
    return null ? std::string() : local + "@" + domain;
}

AddressParse parse_path(std::string_view arg, bool allow_null, bool allow_utf8) {
    AddressParse r;
    auto a = trim(arg);
    if (a.empty() || a.front() != '<') {
        r.error = "Invalid address: expected \"<\"";
        return r;
    }
    // The closing '>' is the first one outside a quoted string.
    size_t close = std::string_view::npos;
    bool quoted = false;
    for (size_t i = 1; i < a.size(); ++i) {
        if (quoted && a[i] == '\\') {
            ++i;
        } else if (a[i] == '"') {
            quoted = !quoted;
        } else if (!quoted && a[i] == '>') {
            close = i;
            break;
        }
    }
    if (close == std::string_view::npos) {
        r.error = "Invalid address: missing \">\"";
        return r;
    }
    auto inner = a.substr(1, close - 1);
    r.rest = std::string(trim(a.substr(close + 1)));
    if (!r.rest.empty() && a[close + 1] != ' ') {
        r.error = "Invalid address: text after \">\"";
        return r;
    }
    Address addr;
    if (inner.empty()) {
        if (!allow_null) {
            r.error = "Invalid address: the null path <> is only valid as a sender";
            return r;
        }
        addr.null = true;
        r.address = addr;
        return r;
    }
    if (inner.front() == '@') {  // source route: "@a,@b:" then the mailbox
        size_t colon = inner.find(':');
        if (colon == std::string_view::npos) {
            r.error = "Invalid address: source route without \":\"";
            return r;
        }
        for (const auto& hop : split_list(inner.substr(0, colon), ",")) {
            if (hop.size() < 2 || hop[0] != '@' ||
                !valid_domain(std::string_view(hop).substr(1), allow_utf8)) {
                r.error = "Invalid address: bad source route";
                return r;
            }
        }
        inner = inner.substr(colon + 1);
        addr.had_route = true;
    }
    size_t at = find_at(inner);
    if (at == std::string_view::npos || at == 0 || at + 1 >= inner.size()) {
        r.error = "Invalid address: expected \"local@domain\"";
        return r;
    }
    auto local = inner.substr(0, at);
    auto domain = inner.substr(at + 1);
    if (local.size() > 64 && !allow_utf8) {
        r.error = "Invalid address: local part longer than 64 octets";
        return r;
    }
    bool local_ok = local.front() == '"' ? valid_quoted(local, allow_utf8)
                                         : valid_dot_string(local, allow_utf8);
    if (!local_ok) {
        r.error = has_non_ascii(local) && !allow_utf8
                      ? "Invalid address: non-ASCII local part without SMTPUTF8"
                      : "Invalid address: bad local part";
        return r;
    }
    if (!domain.empty() && domain.front() == '[') {
        if (!valid_literal(domain)) {
            r.error = "Invalid address: bad address literal";
            return r;
        }
        addr.literal = true;
        addr.domain = std::string(domain);
    } else {
        if (domain.size() > 1 && domain.back() == '.') domain.remove_suffix(1);
        if (!valid_domain(domain, allow_utf8)) {
            r.error = has_non_ascii(domain) && !allow_utf8
                          ? "Invalid address: non-ASCII domain without SMTPUTF8"
                          : "Invalid address: bad domain";
            return r;
        }
        addr.domain = to_lower(domain);
    }
    addr.local = std::string(local);
    addr.utf8 = has_non_ascii(local) || has_non_ascii(domain);
    addr.has_routing_chars = local.find_first_of("%!") != std::string_view::npos ||
                             (local.front() == '"' && local.find('@') != std::string_view::npos);
    r.address = std::move(addr);
    return r;
}

}  // namespace kasi
