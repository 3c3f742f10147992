#include "core/reputation/reputation_query.h"

#include "core/util/strings.h"

namespace kasi {

bool parse_rep_query(const std::vector<std::pair<std::string, std::string>>& kv, RepQuery& q,
                     std::string& err) {
    for (const auto& [k, v] : kv) {
        if (k == "source")
            q.filter.source = v;
        else if (k == "domain")
            q.filter.domain = to_lower(v);
        else if (k == "provider")
            q.filter.provider = v;
        else if (k == "tenant")
            q.filter.tenant = v;
        else if (k == "rollups") {
            if (v != "" && v != "true" && v != "1" && v != "false" && v != "0") {
                err = "rollups=" + v + ": true or false";
                return false;
            }
            q.filter.rollups_only = v == "" || v == "true" || v == "1";
        } else if (k == "limit") {
            unsigned long long n = 0;
            if (!parse_u64(v, n) || n == 0 || n > 100'000) {
                err = "limit=" + v + ": a number from 1 to 100000";
                return false;
            }
            q.limit = size_t(n);
        } else {
            err = "unknown filter '" + k + "' (source, domain, provider, tenant, rollups, limit)";
            return false;
        }
    }
    return true;
}

std::vector<std::pair<std::string, std::string>> rep_query_words(const std::string& line) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& w : split_list(line, " ")) {
        if (w.empty()) continue;
        auto eq = w.find('=');
        if (eq == std::string::npos)
            out.emplace_back(w, "");
        else
            out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    }
    return out;
}

}  // namespace kasi
