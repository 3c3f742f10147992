#include "core/feedback/report_mailboxes.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/queue/verp.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

std::string normalise(std::string_view s) {
    auto t = to_lower(trim(s));
    if (!t.empty() && t.back() == '.') t.pop_back();
    return t;
}

void add(std::vector<std::string>& v, std::string s) {
    if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

}  // namespace

std::shared_ptr<const ReportMailboxes> ReportMailboxes::load(const ConfigDir& cfg,
                                                             const VerpConfig* verp,
                                                             Diagnostics& d) {
    auto m = std::make_shared<ReportMailboxes>();
    Ini ini = cfg.ini("feedback.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main"});
    r.check_known("main", {"domains", "addresses"});
    for (const auto& dom : r.get_list("main", "domains")) {
        auto n = normalise(dom);
        if (n.find('@') != std::string::npos || n.find('.') == std::string::npos) {
            d.error(ini.path, 0,
                    fmt::format("[main] domains: '{}' is not a domain name (addresses go in "
                                "addresses =)",
                                dom));
            continue;
        }
        add(m->domains_, n);
    }
    for (const auto& a : r.get_list("main", "addresses")) {
        auto n = normalise(a);
        if (n.size() >= 2 && n.front() == '<' && n.back() == '>') n = n.substr(1, n.size() - 2);
        auto at = n.find('@');
        if (at == std::string::npos || at == 0 || at + 1 == n.size()) {
            d.error(ini.path, 0, fmt::format("[main] addresses: '{}' is not local@domain", a));
            continue;
        }
        add(m->addresses_, n);
    }
    if (verp)
        for (auto& dom : verp->return_path_domains()) add(m->domains_, normalise(dom));
    if (m->domains_.empty() && m->addresses_.empty()) return nullptr;
    return m;
}

bool ReportMailboxes::accepts(std::string_view address) const {
    auto a = normalise(address);
    if (std::find(addresses_.begin(), addresses_.end(), a) != addresses_.end()) return true;
    auto at = a.rfind('@');
    if (at == std::string::npos) return false;
    auto dom = a.substr(at + 1);
    return std::find(domains_.begin(), domains_.end(), dom) != domains_.end();
}

}  // namespace kasi
