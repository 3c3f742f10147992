#include "core/suppression/suppression_policy.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include "core/queue/outbound_config.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

int64_t duration_s(IniReader& r, const Ini& ini, Diagnostics& d, const char* key, int64_t def) {
    auto text = r.get_str("policy", key, "");
    if (trim(text).empty()) return def;
    int64_t ms = 0;
    if (trim(text) == "0") return 0;
    if (!parse_duration_ms(trim(text), ms) || ms < 0) {
        d.error(ini.path, 0,
                fmt::format("[policy] {} = {}: not a duration (30d, 12h, 0)", key, text));
        return def;
    }
    return ms / 1000;
}

}  // namespace

std::string SuppressionPolicy::scope_for(const std::string& tenant,
                                         const std::string& sending_domain) const {
    if (scope == Scope::tenant && !tenant.empty()) return "tenant:" + tenant;
    if (scope == Scope::domain && !sending_domain.empty())
        return "domain:" + to_lower(sending_domain);
    return "";
}

int64_t SuppressionPolicy::ttl_for(SuppressionReason r) const {
    switch (r) {
        case SuppressionReason::hard_bounce:
            return hard_bounce_ttl_s;
        case SuppressionReason::complaint:
            return complaint_ttl_s;
        case SuppressionReason::unsubscribe:
            return unsubscribe_ttl_s;
        case SuppressionReason::soft_bounce:
            return soft_bounce_ttl_s;
        default:
            return 0;
    }
}

std::shared_ptr<const SuppressionPolicy> SuppressionPolicy::load(const ConfigDir& cfg,
                                                                 const std::string& spool_dir,
                                                                 Diagnostics& d) {
    auto p = std::make_shared<SuppressionPolicy>();
    Ini ini = cfg.ini("suppression.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "policy", "postgres"});
    r.check_known("postgres", {"dsn", "poll_interval"});
    r.check_known("main", {"enabled", "dir", "at_reception"});
    r.check_known("policy", {"hard_bounce", "complaint", "unsubscribe", "soft_bounce_threshold",
                             "soft_bounce_window", "scope", "hard_bounce_expires",
                             "complaint_expires", "unsubscribe_expires", "soft_bounce_expires"});
    p->enabled = r.get_bool("main", "enabled", true);
    auto dir = r.get_str("main", "dir", "suppression");
    p->dir = !dir.empty() && dir[0] == '/' ? dir : spool_dir + "/" + dir;
    auto at = to_lower(r.get_str("main", "at_reception", "refuse"));
    if (at != "refuse" && at != "accept")
        d.error(ini.path, 0, fmt::format("[main] at_reception = {}: refuse or accept", at));
    p->refuse_at_rcpt = at != "accept";
    p->hard_bounce = r.get_bool("policy", "hard_bounce", true);
    p->complaint = r.get_bool("policy", "complaint", true);
    p->unsubscribe = r.get_bool("policy", "unsubscribe", true);
    p->soft_bounce_threshold = int(r.get_int("policy", "soft_bounce_threshold", 3, 0, 1000));
    p->soft_bounce_window_s = duration_s(r, ini, d, "soft_bounce_window", 7 * 86400);
    auto scope = to_lower(r.get_str("policy", "scope", "global"));
    if (scope == "tenant")
        p->scope = Scope::tenant;
    else if (scope == "domain")
        p->scope = Scope::domain;
    else if (scope != "global")
        d.error(ini.path, 0, fmt::format("[policy] scope = {}: global, tenant or domain", scope));
    p->hard_bounce_ttl_s = duration_s(r, ini, d, "hard_bounce_expires", 0);
    p->complaint_ttl_s = duration_s(r, ini, d, "complaint_expires", 0);
    p->unsubscribe_ttl_s = duration_s(r, ini, d, "unsubscribe_expires", 0);
    p->soft_bounce_ttl_s = duration_s(r, ini, d, "soft_bounce_expires", 30 * 86400);
    p->pg_dsn = std::string(trim(r.get_str("postgres", "dsn", "")));
    if (!p->pg_dsn.empty()) {  // libpq's own parser: its message names the bad part only
        char* why = nullptr;
        PQconninfoOption* opts = PQconninfoParse(p->pg_dsn.c_str(), &why);
        if (!opts) {
            std::string e = why ? why : "out of memory";
            while (!e.empty() && e.back() == '\n') e.pop_back();
            d.error(ini.path, 0, "[postgres] dsn: " + e);
        }
        PQconninfoFree(opts);
        PQfreemem(why);
    }
    std::string poll(trim(r.get_str("postgres", "poll_interval", "1s")));
    int64_t ms = 0;
    unsigned long long n = 0;
    bool parsed = poll.size() > 2 && poll.substr(poll.size() - 2) == "ms"
                      ? parse_u64(poll.substr(0, poll.size() - 2), n) && (ms = int64_t(n), true)
                      : parse_duration_ms(poll, ms);
    if (!parsed || ms < 100 || ms > 3600000)
        d.error(ini.path, 0,
                fmt::format("[postgres] poll_interval = {}: a duration from 100ms to 1h", poll));
    else
        p->pg_poll_ms = ms;
    return p;
}

}  // namespace kasi
