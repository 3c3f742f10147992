#include "core/config/ini.h"

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

namespace {

bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '@' || c == ':' || c == '.' || c == '+' || c == '-' || c == '/' || c == '[' ||
           c == ']';
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

bool is_forbidden(std::string_view k) {
    return k == "__proto__" || k == "constructor" || k == "prototype";
}

// Splits on \r\n, \r or \n, as haraka-config does.
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r' || text[i] == '\n') {
            lines.push_back(text.substr(start, i - start));
            if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            start = i + 1;
        }
    }
    lines.push_back(text.substr(start));
    return lines;
}

// "[name]" with optional surrounding white space; name may not contain ']'.
bool match_section(std::string_view line, std::string& name) {
    auto t = trim(line);
    if (t.size() < 2 || t.front() != '[' || t.back() != ']') return false;
    auto inner = t.substr(1, t.size() - 2);
    if (inner.find(']') != std::string_view::npos) return false;
    name = std::string(inner);
    return true;
}

// Trailing backslash followed only by blanks.
bool strip_continuation(std::string_view line, std::string_view& out) {
    size_t e = line.size();
    while (e > 0 && (line[e - 1] == ' ' || line[e - 1] == '\t')) --e;
    if (e == 0 || line[e - 1] != '\\') return false;
    out = line.substr(0, e - 1);
    return true;
}

bool match_param(std::string_view line, std::string& key, std::optional<std::string>& value) {
    size_t i = 0;
    while (i < line.size() && is_space(line[i])) ++i;
    size_t ks = i;
    while (i < line.size() && is_key_char(line[i])) ++i;
    if (i == ks) return false;
    key = std::string(line.substr(ks, i - ks));
    size_t j = i;
    while (j < line.size() && is_space(line[j])) ++j;
    if (j == line.size()) {
        value.reset();
        return true;
    }
    if (line[j] != '=') return false;
    auto v = line.substr(j + 1);
    size_t b = 0, e = v.size();
    while (b < e && is_space(v[b])) ++b;
    while (e > b && is_space(v[e - 1])) --e;
    value = std::string(v.substr(b, e - b));
    return true;
}

}  // namespace

const IniEntry* IniSection::find(std::string_view key) const {
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        if (it->key == key) return &*it;
    return nullptr;
}

IniType ini_infer_type(const std::optional<std::string>& v) {
    if (!v) return IniType::none;
    std::string_view s = *v;
    size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
    size_t digits = 0, dot = std::string_view::npos;
    for (size_t k = i; k < s.size(); ++k) {
        if (s[k] >= '0' && s[k] <= '9') {
            ++digits;
        } else if (s[k] == '.' && dot == std::string_view::npos) {
            dot = k;
        } else {
            return IniType::string;
        }
    }
    if (digits == 0) return IniType::string;
    if (dot == std::string_view::npos) return IniType::integer;
    if (dot > i && dot + 1 < s.size()) return IniType::floating;
    return IniType::string;
}

bool ini_is_truthy(const std::optional<std::string>& v) {
    if (!v) return false;
    for (const char* t : {"true", "yes", "ok", "enabled", "on", "1"})
        if (iequals(*v, t)) return true;
    return false;
}

Ini Ini::parse(std::string_view text, std::string path) {
    Ini ini;
    ini.path = std::move(path);
    ini.sections.push_back(IniSection{"main", 0, {}});
    size_t current = 0;
    bool discarding = false;  // inside an unsafe section name
    std::string pre;
    int pre_line = 0;
    auto lines = split_lines(text);
    for (size_t n = 0; n < lines.size(); ++n) {
        std::string_view raw = lines[n];
        int lineno = int(n) + 1;
        auto t = trim(raw);
        if (t.empty() || t[0] == ';' || t[0] == '#') continue;
        std::string sect;
        if (match_section(raw, sect)) {
            discarding = is_forbidden(sect);
            if (discarding) {
                ini.problems.push_back(fmt::format("{}:{}: ignoring unsafe section name [{}]",
                                                   ini.path, lineno, sect));
                continue;
            }
            current = ini.sections.size();
            for (size_t s = 0; s < ini.sections.size(); ++s)
                if (ini.sections[s].name == sect) current = s;
            if (current == ini.sections.size())
                ini.sections.push_back(IniSection{sect, lineno, {}});
            continue;
        }
        std::string_view body;
        if (strip_continuation(raw, body)) {
            if (pre.empty()) pre_line = lineno;
            pre += body;
            continue;
        }
        std::string line = pre + std::string(raw);
        int at = pre.empty() ? lineno : pre_line;
        pre.clear();
        std::string key;
        std::optional<std::string> value;
        if (!match_param(line, key, value)) {
            ini.problems.push_back(fmt::format("{}:{}: invalid line: {}", ini.path, at, line));
            continue;
        }
        if (discarding) continue;
        bool is_array = key.size() > 2 && key.ends_with("[]");
        std::string base = is_array ? key.substr(0, key.size() - 2) : key;
        if (is_forbidden(base)) {
            ini.problems.push_back(
                fmt::format("{}:{}: ignoring unsafe key '{}'", ini.path, at, key));
            continue;
        }
        auto& entries = ini.sections[current].entries;
        if (is_array) {
            IniEntry* existing = nullptr;
            for (auto& e : entries)
                if (e.key == base && e.is_array) existing = &e;
            if (!existing) {
                entries.push_back(IniEntry{base, std::nullopt, {}, true, at});
                existing = &entries.back();
            }
            existing->array.push_back(value.value_or(""));
        } else {
            entries.push_back(IniEntry{base, value, {}, false, at});
        }
    }
    return ini;
}

const IniSection* Ini::section(std::string_view name) const {
    for (const auto& s : sections)
        if (s.name == name) return &s;
    return nullptr;
}

const IniEntry* Ini::find(std::string_view sect, std::string_view key) const {
    auto* s = section(sect);
    return s ? s->find(key) : nullptr;
}

}  // namespace kasi
