#include "core/config/config_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/util/file.h"
#include "core/util/strings.h"

namespace kasi {

std::optional<std::string> ConfigDir::path_of(const std::string& name) const {
    if (name.empty()) return std::nullopt;
    if (name[0] == '/') return name;
    int depth = 0;
    for (const auto& part : split_list(name, "/")) {
        if (part == "..") {
            if (--depth < 0) return std::nullopt;
        } else if (part != ".") {
            ++depth;
        }
    }
    return root_ + "/" + name;
}

bool ConfigDir::exists(const std::string& name) const {
    auto p = path_of(name);
    struct stat st;
    return p && ::stat(p->c_str(), &st) == 0;
}

bool ConfigDir::read_file(const std::string& name, std::string& out, Diagnostics& d) const {
    auto p = path_of(name);
    if (!p) {
        d.error(name, 0, "config file name escapes the config directory");
        return false;
    }
    int fd = ::open(p->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR) d.error(*p, 0, std::strerror(errno));
        return false;
    }
    out.clear();
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            d.error(*p, 0, std::strerror(errno));
            ::close(fd);
            return false;
        }
        if (n == 0) break;
        out.append(buf, size_t(n));
    }
    ::close(fd);
    return true;
}

std::vector<ListLine> ConfigDir::list(const std::string& name, Diagnostics& d) const {
    std::vector<ListLine> out;
    std::string text;
    if (!read_file(name, text, d)) return out;
    int lineno = 0;
    size_t start = 0;
    while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        ++lineno;
        auto t = trim(std::string_view(text).substr(start, nl - start));
        if (!t.empty() && t[0] != '#' && t[0] != ';') out.push_back({std::string(t), lineno});
        start = nl + 1;
    }
    return out;
}

std::optional<ListLine> ConfigDir::value(const std::string& name, Diagnostics& d) const {
    auto l = list(name, d);
    if (l.empty()) return std::nullopt;
    return l.front();
}

std::optional<std::vector<std::string>> ConfigDir::data(const std::string& name,
                                                        Diagnostics& d) const {
    std::string text;
    if (!read_file(name, text, d)) return std::nullopt;
    std::vector<std::string> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(std::move(line));
        start = nl + 1;
    }
    return out;
}

Ini ConfigDir::ini(const std::string& name, Diagnostics& d) const {
    std::string text;
    auto p = path_of(name).value_or(name);
    if (!read_file(name, text, d)) return Ini::parse("", p);
    Ini ini = Ini::parse(text, p);
    for (const auto& prob : ini.problems) d.warnings.push_back(prob);
    return ini;
}

bool IniReader::get_bool(std::string_view sect, std::string_view key, bool def) const {
    auto* e = ini_.find(sect, key);
    if (!e || e->is_array) return def;
    if (e->value && !ini_is_truthy(e->value)) {
        static const char* falsy[] = {"false", "no", "off", "disabled", "0", ""};
        bool known = false;
        for (auto* f : falsy)
            if (iequals(*e->value, f)) known = true;
        if (!known)
            d_.warn(ini_.path, e->line,
                    fmt::format("[{}] {}: '{}' is not a boolean; taken as false", sect, key,
                                *e->value));
    }
    return ini_is_truthy(e->value);
}

long long IniReader::get_int(std::string_view sect, std::string_view key, long long def,
                             long long min, long long max) const {
    auto* e = ini_.find(sect, key);
    if (!e || e->is_array) return def;
    if (ini_infer_type(e->value) != IniType::integer) {
        d_.error(ini_.path, e->line,
                 fmt::format("[{}] {}: expected an integer, got '{}'", sect, key,
                             e->value.value_or("")));
        return def;
    }
    long long v = std::stoll(*e->value);
    if (v < min || v > max) {
        d_.error(ini_.path, e->line,
                 fmt::format("[{}] {}: {} is out of range ({}..{})", sect, key, v, min, max));
        return def;
    }
    return v;
}

std::string IniReader::get_secret(std::string_view sect, std::string_view key,
                                  const std::string& dir, std::string_view hint) const {
    const IniEntry* e = ini_.find(sect, key);
    std::string secret;
    if (e && e->value) {
        std::string_view v = trim(*e->value);
        if (!v.starts_with("file:")) {
            secret = std::string(v);
        } else {
            std::string path(trim(v.substr(5)));
            if (!path.empty() && path[0] != '/') path = dir + "/" + path;
            if (!read_whole_file(path, secret)) {
                d_.error(ini_.path, e->line, "cannot read the secret file " + path);
                return {};
            }
            secret = std::string(trim(secret));
        }
    }
    if (secret.size() < 16) {
        d_.error(ini_.path, e ? e->line : 0,
                 fmt::format("[{}] {}: at least 16 characters (or file:PATH){}", sect, key, hint));
        return {};
    }
    return secret;
}

std::string IniReader::get_str(std::string_view sect, std::string_view key, std::string def) const {
    auto* e = ini_.find(sect, key);
    if (!e || e->is_array || !e->value) return def;
    return *e->value;
}

std::vector<std::string> IniReader::get_list(std::string_view sect, std::string_view key) const {
    std::vector<std::string> out;
    auto* s = ini_.section(sect);
    if (!s) return out;
    for (const auto& e : s->entries) {
        if (e.key != key) continue;
        if (e.is_array) {
            for (const auto& v : e.array)
                for (auto& p : split_list(v, ", ")) out.push_back(p);
        } else if (e.value) {
            out.clear();
            for (auto& p : split_list(*e.value, ", ")) out.push_back(p);
        }
    }
    return out;
}

void IniReader::check_known(std::string_view sect,
                            std::initializer_list<std::string_view> known) const {
    auto* s = ini_.section(sect);
    if (!s) return;
    for (const auto& e : s->entries) {
        bool found = false;
        for (auto k : known)
            if (k == e.key) found = true;
        if (!found) d_.warn(ini_.path, e.line, fmt::format("[{}] unknown key '{}'", sect, e.key));
    }
}

void IniReader::check_sections(std::initializer_list<std::string_view> known) const {
    for (const auto& s : ini_.sections) {
        if (s.name == "main" && s.entries.empty()) continue;
        bool found = false;
        for (auto k : known)
            if (k == s.name) found = true;
        if (!found) d_.warn(ini_.path, s.line, fmt::format("unknown section [{}]", s.name));
    }
}

CidrList IniReader::get_cidr_section(std::string_view sect) const {
    CidrList out;
    const auto* s = ini_.section(sect);
    if (!s) return out;
    for (const auto& e : s->entries) {
        auto c = Cidr::parse(e.key);
        if (!c)
            d_.error(ini_.path, e.line,
                     fmt::format("[{}] '{}' is not an IP address or CIDR block", sect, e.key));
        else
            out.add(*c);
    }
    return out;
}

}  // namespace kasi
