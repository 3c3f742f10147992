#include "core/util/psl.h"

#include <fstream>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "core/log/log.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr const char* system_list = "/usr/share/publicsuffix/public_suffix_list.dat";

struct Rules {
    std::unordered_set<std::string> exact, wildcard /* "*.x" stored as "x" */, exception;
    bool loaded = false;
};

Rules& rules() {
    static Rules r;
    return r;
}
std::mutex& rules_mutex() {
    static std::mutex m;
    return m;
}

bool load_into(Rules& r, const std::string& path) {
    std::ifstream f(path);
    if (!f) return false;
    r = Rules{};
    std::string line;
    while (std::getline(f, line)) {
        auto t = trim(line);
        if (t.empty() || t.starts_with("//")) continue;
        auto sp = t.find_first_of(" \t");
        if (sp != std::string_view::npos) t = t.substr(0, sp);
        std::string rule = to_lower(t);
        if (rule.starts_with("!"))
            r.exception.insert(rule.substr(1));
        else if (rule.starts_with("*."))
            r.wildcard.insert(rule.substr(2));
        else
            r.exact.insert(rule);
    }
    r.loaded = true;
    return true;
}

const Rules& loaded_rules() {
    std::lock_guard lk(rules_mutex());
    Rules& r = rules();
    if (!r.loaded && !load_into(r, system_list)) {
        log::warn("{} not readable: organizational domains fall back to the last two labels",
                  system_list);
        r.loaded = true;
    }
    return r;
}

}  // namespace

bool psl_load_file(const std::string& path) {
    std::lock_guard lk(rules_mutex());
    return load_into(rules(), path);
}

std::string organizational_domain(std::string_view domain) {
    std::string d = to_lower(domain);
    while (!d.empty() && d.back() == '.') d.pop_back();
    if (d.empty()) return "";
    std::vector<size_t> starts{0};  // start offset of each label suffix
    for (size_t i = 0; i < d.size(); ++i)
        if (d[i] == '.') starts.push_back(i + 1);
    const Rules& r = loaded_rules();
    // Longest matching public suffix, in labels; the implicit rule "*" gives 1.
    size_t suffix_labels = 1;
    for (size_t i = 0; i < starts.size(); ++i) {
        std::string_view suf(d.data() + starts[i], d.size() - starts[i]);
        size_t labels = starts.size() - i;
        std::string s(suf);
        if (r.exception.count(s)) {
            suffix_labels = labels - 1;
            break;
        }
        if (r.exact.count(s)) {
            suffix_labels = std::max(suffix_labels, labels);
            break;
        }
        if (i + 1 < starts.size()) {
            std::string parent(d.data() + starts[i + 1], d.size() - starts[i + 1]);
            if (r.wildcard.count(parent)) {
                suffix_labels = std::max(suffix_labels, labels);
                break;
            }
        }
    }
    if (suffix_labels >= starts.size()) return "";
    return d.substr(starts[starts.size() - suffix_labels - 1]);
}

}  // namespace kasi
