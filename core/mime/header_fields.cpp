#include "core/mime/header_fields.h"

#include "core/mime/transfer_decode.h"
#include "core/util/strings.h"

namespace kasi::mime {

namespace {

std::string_view trim_blanks(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// A field name: printable ASCII without a colon or blank (RFC 5322 §2.2).
bool field_name(std::string_view line, size_t& colon) {
    colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon > 76) return false;
    for (size_t i = 0; i < colon; ++i) {
        unsigned char c = static_cast<unsigned char>(line[i]);
        if (c <= 32 || c >= 127) return i > 0 && trim_blanks(line.substr(i, colon - i)).empty();
    }
    return true;
}

void append_continuation(Field& f, std::string_view line) {
    auto t = trim_blanks(line);
    if (t.empty()) return;
    if (!f.value.empty()) f.value += ' ';
    f.value.append(t);
}

}  // namespace

std::string_view HeaderFields::get(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return f.value;
    return {};
}

std::vector<std::string_view> HeaderFields::all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& f : fields)
        if (iequals(f.name, name)) out.push_back(f.value);
    return out;
}

bool HeaderFields::has(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return true;
    return false;
}

HeaderFields parse_fields(std::string_view text, size_t& consumed, size_t max_fields) {
    HeaderFields h;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        size_t end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
        if (line.empty()) {
            pos = next;
            break;
        }
        size_t colon;
        bool folded = line.front() == ' ' || line.front() == '\t';
        if (!folded && field_name(line, colon)) {
            if (h.fields.size() < max_fields)
                h.fields.push_back({std::string(trim_blanks(line.substr(0, colon))),
                                    std::string(trim_blanks(line.substr(colon + 1)))});
        } else if (!h.fields.empty() && h.fields.size() <= max_fields) {
            append_continuation(h.fields.back(), line);
        } else if (h.fields.empty() && !folded) {
            // Not a header block at all (a body that starts with text): stop here.
            consumed = 0;
            return h;
        }
        pos = next;
    }
    consumed = pos;
    return h;
}

std::string_view ContentType::param(std::string_view name) const {
    for (const auto& [k, v] : params)
        if (k == name) return v;
    return {};
}

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// One parameter value: a quoted string (backslash escapes) or a token up to ';'.
std::string read_value(std::string_view s, size_t& i) {
    std::string v;
    if (i < s.size() && s[i] == '"') {
        for (++i; i < s.size() && s[i] != '"'; ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) ++i;
            v += s[i];
        }
        if (i < s.size()) ++i;
        while (i < s.size() && s[i] != ';') ++i;
        return v;
    }
    size_t start = i;
    while (i < s.size() && s[i] != ';') ++i;
    return std::string(trim_blanks(s.substr(start, i - start)));
}

// RFC 2231: name*0=a; name*1=b (and name*=charset''value) joined into `name`.
void join_continuations(ContentType& ct) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [k, v] : ct.params) {
        auto star = k.find('*');
        if (star == std::string::npos) {
            out.emplace_back(k, v);
            continue;
        }
        std::string base = k.substr(0, star);
        std::string val = v;
        if (k.back() == '*') {  // extended: charset'lang'percent-encoded
            auto q = val.find('\'');
            auto q2 = q == std::string::npos ? q : val.find('\'', q + 1);
            if (q2 != std::string::npos) val = val.substr(q2 + 1);
            std::string dec;
            for (size_t i = 0; i < val.size(); ++i) {
                int hi = i + 2 < val.size() ? hex_digit(val[i + 1]) : -1;
                int lo = i + 2 < val.size() ? hex_digit(val[i + 2]) : -1;
                if (val[i] == '%' && hi >= 0 && lo >= 0) {
                    dec += char(hi * 16 + lo);
                    i += 2;
                } else {
                    dec += val[i];
                }
            }
            val = dec;
        }
        bool joined = false;
        for (auto& [ok, ov] : out)
            if (ok == base) {
                ov += val;
                joined = true;
            }
        if (!joined) out.emplace_back(base, val);
    }
    ct.params = std::move(out);
}

}  // namespace

ContentType parse_content_type(std::string_view value) {
    ContentType ct;
    size_t semi = value.find(';');
    auto t = to_lower(trim_blanks(value.substr(0, semi)));
    auto slash = t.find('/');
    bool ok = slash != std::string::npos && slash > 0 && slash + 1 < t.size() &&
              t.find_first_of(" \t\"") == std::string::npos;
    ct.type = ok ? t : "text/plain";
    if (semi == std::string_view::npos) return ct;
    size_t i = semi + 1;
    while (i < value.size() && ct.params.size() < 64) {
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t' || value[i] == ';')) ++i;
        size_t eq = value.find('=', i);
        if (eq == std::string_view::npos) break;
        std::string name = to_lower(trim_blanks(value.substr(i, eq - i)));
        i = eq + 1;
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
        std::string v = read_value(value, i);
        if (!name.empty() && name.find_first_of(" \t;") == std::string::npos)
            ct.params.emplace_back(std::move(name), std::move(v));
    }
    join_continuations(ct);
    return ct;
}

std::string decode_words(std::string_view value) {
    std::string out;
    size_t i = 0;
    bool last_was_word = false;
    while (i < value.size()) {
        size_t start = value.find("=?", i);
        if (start == std::string_view::npos) break;
        size_t q1 = value.find('?', start + 2);
        size_t q2 = q1 == std::string_view::npos ? q1 : value.find('?', q1 + 1);
        size_t end = q2 == std::string_view::npos ? q2 : value.find("?=", q2 + 1);
        if (end == std::string_view::npos || q2 != q1 + 2) {
            out.append(value.substr(i, start + 2 - i));
            i = start + 2;
            last_was_word = false;
            continue;
        }
        auto between = value.substr(i, start - i);
        // Blanks between two encoded words are not part of the text (RFC 2047 §6.2).
        if (!(last_was_word && trim_blanks(between).empty())) out.append(between);
        char enc = static_cast<char>(value[q1 + 1] | 0x20);
        auto text = value.substr(q2 + 1, end - q2 - 1);
        bool trunc = false;
        if (enc == 'b') {
            out += decode_base64_lenient(text, 4096, trunc);
        } else if (enc == 'q') {
            std::string t(text);
            for (auto& c : t)
                if (c == '_') c = ' ';
            out += decode_quoted_printable(t, 4096, trunc);
        } else {
            out.append(value.substr(start, end + 2 - start));
        }
        i = end + 2;
        last_was_word = true;
    }
    out.append(value.substr(i < value.size() ? i : value.size()));
    return out;
}

}  // namespace kasi::mime
