#include "core/smtp/headers.h"

#include <fmt/format.h>

#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

HeaderFacts scan_headers(std::string_view m, size_t max_lines) {
    HeaderFacts f;
    size_t pos = 0;
    while (pos < m.size()) {
        if (f.lines >= max_lines) {
            f.line_limit_hit = true;
            break;
        }
        ++f.lines;
        size_t eol = m.find("\r\n", pos);
        if (eol == std::string_view::npos) eol = m.size();
        auto line = m.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.empty()) break;                          // end of the header block
        if (line[0] == ' ' || line[0] == '\t') continue;  // folded continuation
        auto colon = line.find(':');
        if (colon == std::string_view::npos) break;  // not a header: body starts here
        auto name = trim(line.substr(0, colon));
        if (iequals(name, "Received"))
            ++f.received;
        else if (iequals(name, "Message-ID"))
            f.has_message_id = true;
        else if (iequals(name, "Date"))
            f.has_date = true;
    }
    f.header_bytes = std::min(pos, m.size());
    return f;
}

std::string build_received(const ReceivedInfo& r) {
    std::string with = r.esmtp ? "ESMTP" : "SMTP";
    if (r.esmtp && r.tls) with += "S";
    if (r.esmtp && r.auth) with += "A";
    std::string from = fmt::format("from {} ({}[{}])", r.helo.empty() ? r.ip : r.helo,
                                   r.rdns.empty() ? "" : r.rdns + " ", r.ip);
    std::string s =
        fmt::format("Received: {}\r\n\tby {}{} with {} id {}\r\n\tenvelope-from <{}>", from, r.me,
                    r.version.empty() ? "" : " (" + r.version + ")", with, r.id, r.envelope_from);
    if (r.tls && !r.tls_cipher.empty()) s += fmt::format("\r\n\ttls {}", r.tls_cipher);
    s += fmt::format(";\r\n\t{}\r\n", rfc5322_date(r.epoch_s));
    return s;
}

std::vector<std::string> header_values(std::string_view m, std::string_view name) {
    std::vector<std::string> out;
    for_each_header_field(m, [&](std::string_view n, size_t start, size_t end) {
        if (!iequals(n, name)) return;
        auto field = m.substr(start, end - start);
        field = field.substr(field.find(':') + 1);
        std::string v;
        for (size_t i = 0; i < field.size(); ++i) {
            if (field[i] == '\r' || field[i] == '\n') continue;
            v += field[i];
        }
        out.push_back(std::string(trim(v)));
    });
    return out;
}

bool header_field_ok(std::string_view name, std::string_view value, std::string& err) {
    if (name.empty()) {
        err = "empty header name";
        return false;
    }
    for (unsigned char c : name)
        if (c <= 32 || c >= 127 || c == ':') {
            err = fmt::format("invalid header name '{}'", name);
            return false;
        }
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0') {
            err = fmt::format("the value of header {} contains CR, LF or NUL", name);
            return false;
        }
    return true;
}

void header_add(std::string& m, std::string_view name, std::string_view value, bool at_end) {
    std::string field = fmt::format("{}: {}\r\n", name, value);
    size_t at = at_end ? for_each_header_field(m, [](auto, size_t, size_t) {}) : 0;
    if (at > 0 && !std::string_view(m).substr(0, at).ends_with("\r\n")) {
        field.insert(0, "\r\n");  // the last field has no line end: ours must not join it
    } else if (at < m.size() && (m[at] == ' ' || m[at] == '\t')) {
        // A message that starts with a continuation line has no header block; that line
        // would fold into our field and carry the sender's text into its value. A blank
        // line after the field keeps it in the body, where Kasi already counted it.
        field += "\r\n";
    }
    m.insert(at, field);
}

size_t header_remove(std::string& m, std::string_view name) {
    std::vector<std::pair<size_t, size_t>> spans;
    for_each_header_field(m, [&](std::string_view n, size_t start, size_t end) {
        if (iequals(n, name)) spans.emplace_back(start, end);
    });
    for (auto it = spans.rbegin(); it != spans.rend(); ++it)
        m.erase(it->first, it->second - it->first);
    return spans.size();
}

std::vector<std::string> header_addresses(std::string_view v) {
    // Split at top-level commas (not inside quotes, comments or angle brackets); from each
    // part take the <addr-spec> if there is one, else the part without comments.
    std::vector<std::string> out;
    std::string cur, angle;
    bool quoted = false, in_angle = false, has_angle = false;
    int comment = 0;
    auto flush = [&] {
        std::string a(trim(has_angle ? angle : cur));
        if (size_t colon = a.find(':'); !has_angle && colon != std::string::npos)
            a = std::string(trim(std::string_view(a).substr(colon + 1)));  // group "name: a@b"
        while (!a.empty() && a.back() == ';') a.pop_back();
        if (a.find('@') != std::string::npos) out.push_back(a);
        cur.clear();
        angle.clear();
        has_angle = false;
    };
    for (size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (quoted) {
            if (c == '\\' && i + 1 < v.size())
                ++i;
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (comment) {
            if (c == '(') ++comment;
            if (c == ')') --comment;
            continue;
        }
        if (c == '"')
            quoted = true;
        else if (c == '(')
            comment = 1;
        else if (c == '<')
            in_angle = has_angle = true, angle.clear();
        else if (c == '>')
            in_angle = false;
        else if (in_angle)
            angle += c;
        else if (c == ',' || c == ';')
            flush();
        else if (c != '\r' && c != '\n')
            cur += c;
    }
    flush();
    return out;
}

std::string author_domain(std::string_view m, std::string_view envelope_domain) {
    auto domain_of = [](std::string_view a) {
        size_t at = a.rfind('@');
        return at == std::string_view::npos ? std::string() : to_lower(a.substr(at + 1));
    };
    auto from = header_values(m, "From");
    if (from.size() == 1) {
        auto addrs = header_addresses(from[0]);
        if (addrs.size() == 1) return domain_of(addrs[0]);
    }
    auto sender = header_values(m, "Sender");
    if (!sender.empty()) {
        auto addrs = header_addresses(sender[0]);
        if (!addrs.empty()) return domain_of(addrs[0]);
    }
    return std::string(envelope_domain);
}

}  // namespace kasi
