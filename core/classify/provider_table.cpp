#include "core/classify/provider_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "core/classify/rules_dir.h"
#include "core/util/file.h"
#include "core/util/ip.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

bool valid_suffix(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != s.npos) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    return true;
}

bool valid_provider(std::string_view s) {
    if (s.empty() || s == "other") return s == "other";
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '/'))
            return false;
    return true;
}

// "SUFFIX PROVIDER" (after the comment is cut); false and `why` for a bad line.
bool parse_entry(std::string_view line, std::string& suffix, std::string& provider,
                 std::string& why) {
    auto words = split_list(line, " \t\r");
    if (words.size() != 2) {
        why = "expected SUFFIX PROVIDER";
        return false;
    }
    suffix = to_lower(words[0]);
    if (!suffix.empty() && suffix[0] == '.') suffix.erase(0, 1);
    provider = words[1];
    if (!valid_suffix(suffix)) {
        why = "bad host suffix '" + words[0] + "'";
        return false;
    }
    if (!valid_provider(provider)) {
        why = "bad provider name '" + provider + "' (lower case letters, digits, - . _ /)";
        return false;
    }
    return true;
}

}  // namespace

std::shared_ptr<const ProviderTable> ProviderTable::parse(std::string_view text,
                                                          const std::string& path,
                                                          std::string& err) {
    auto t = std::make_shared<ProviderTable>();
    int n = 0;
    while (!text.empty()) {
        size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
        ++n;
        line = trim(line.substr(0, line.find('#')));
        if (line.empty()) continue;
        std::string suffix, provider, why;
        if (parse_entry(line, suffix, provider, why)) {
            auto [it, fresh] = t->suffixes_.emplace(suffix, provider);
            if (fresh || it->second == provider) continue;
            why = "suffix " + suffix + " is already " + it->second;
        }
        err = path + ":" + std::to_string(n) + ": " + why;
        return nullptr;
    }
    return t;
}

std::shared_ptr<const ProviderTable> ProviderTable::load(const std::string& path,
                                                         std::string& err) {
    std::string text;
    if (!read_whole_file(path, text)) {
        err = path + ": " + std::strerror(errno ? errno : ENOENT);
        return nullptr;
    }
    return parse(text, path, err);
}

namespace {

struct Shipped {
    std::shared_ptr<const ProviderTable> table;
    std::string err;
};

const Shipped& shipped_table() {
    static const Shipped s = [] {
        Shipped r;
        r.table = ProviderTable::load(default_rules_dir() + "/providers.tsv", r.err);
        if (!r.table) r.table = ProviderTable::parse("", "", r.err);
        return r;
    }();
    return s;
}

}  // namespace

const ProviderTable& ProviderTable::shipped() {
    return *shipped_table().table;
}
const std::string& ProviderTable::shipped_error() {
    return shipped_table().err;
}

std::string_view ProviderTable::provider_of(std::string_view host) const {
    while (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (host.empty() || suffixes_.empty()) return "other";
    if (IpAddr::parse(host)) return "other";
    std::string h = to_lower(host);
    std::string_view rest = h;
    while (!rest.empty()) {
        auto it = suffixes_.find(std::string(rest));
        if (it != suffixes_.end()) return it->second;
        size_t dot = rest.find('.');
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return "other";
}

std::vector<std::string> ProviderTable::providers() const {
    std::set<std::string> names;
    for (const auto& [s, p] : suffixes_) names.insert(p);
    return {names.begin(), names.end()};
}

}  // namespace kasi
