#include "core/suppression/suppression_admin.h"

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/queue/outbound_config.h"
#include "core/suppression/suppression_csv.h"
#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

std::string scope_arg(const std::string& s) {
    return s == "-" ? std::string() : s;
}

std::string describe(const SuppressionEntry& e) {
    return fmt::format("suppressed: {} scope='{}' reason={} since={} expires={} cause={}",
                       e.address, e.scope, reason_name(e.reason), e.created, e.expires, e.event);
}

std::string check(SuppressionService& svc, const std::vector<std::string>& w) {
    std::vector<std::string> scopes(w.begin() + 3, w.end());
    auto e = svc.store().check(w[2], scopes, now_ms() / 1000);
    return e ? "ok: " + describe(*e) + "\n" : "ok: not suppressed\n";
}

// The entries of one page as CSV, then "next: CURSOR" (0: the walk is complete): the
// AFTER that continues it.
std::string list(SuppressionService& svc, const std::vector<std::string>& w) {
    SuppressionQuery q;
    if (w.size() > 2 && w[2] != "*") q.scope = scope_arg(w[2]);
    unsigned long long limit = 1000, after = 0;
    if (w.size() > 3 && (!parse_u64(w[3], limit) || limit == 0 || limit > 10000000))
        return "error: LIMIT is 1 to 10000000\n";
    if (w.size() > 4 && !parse_u64(w[4], after))
        return "error: AFTER is the number a previous list gave as next\n";
    q.now = now_ms() / 1000;
    q.after = after;
    std::string out = "ok: address,scope,reason,created,expires,event\n";
    size_t n = 0;
    do {
        q.limit = std::min<size_t>(size_t(limit) - n, 10000);
        auto page = svc.store().list(q);
        for (const auto& e : page.entries) {
            out += suppression_csv_row(e);
            if (out.back() != '\n') out += '\n';
            ++n;
        }
        q.after = page.next;
    } while (q.after != 0 && n < limit);
    return out + fmt::format("next: {}\n", q.after);
}

std::string add(SuppressionService& svc, const std::vector<std::string>& w) {
    SuppressionEntry e;
    e.address = w[2];
    e.scope = w.size() > 3 ? scope_arg(w[3]) : "";
    e.reason = SuppressionReason::manual;
    if (w.size() > 4) {
        auto r = parse_reason(w[4]);
        if (!r) return fmt::format("error: unknown reason '{}'\n", w[4]);
        e.reason = *r;
    }
    e.created = now_ms() / 1000;
    if (w.size() > 5) {
        int64_t ms = 0;
        if (!parse_duration_ms(w[5], ms) || ms <= 0)
            return fmt::format("error: EXPIRES '{}' is not a duration (30d, 12h)\n", w[5]);
        e.expires = e.created + ms / 1000;
    }
    e.event = "kasictl";
    std::string err;
    if (!validate_entry(e, err)) return "error: " + err + "\n";
    if (!svc.store().add({e}, err)) return "error: " + err + "\n";
    log::notice("suppression: {} added by an operator ({}, scope '{}')", e.address,
                reason_name(e.reason), e.scope);
    return "ok: added " + e.address + "\n";
}

std::string remove(SuppressionService& svc, const std::vector<std::string>& w) {
    std::string scope = w.size() > 3 ? scope_arg(w[3]) : "";
    auto had = svc.store().find(scope, w[2], now_ms() / 1000);
    std::string err;
    if (!svc.store().remove(scope, {w[2]}, err)) return "error: " + err + "\n";
    log::notice("suppression: {} removed by an operator (scope '{}')", w[2], scope);
    return had ? "ok: removed " + normalize_address(w[2]) + "\n" : "ok: was not suppressed\n";
}

}  // namespace

std::string suppression_command(SuppressionService& svc, const std::string& line) {
    auto w = split_list(line, " ");
    if (w.size() < 2 || w[0] != "suppress")
        return "error: usage: suppress check|list|add|remove ...\n";
    const auto& verb = w[1];
    if (verb == "list" && w.size() <= 5) return list(svc, w);
    if (w.size() < 3) return "error: suppress " + verb + " needs an address\n";
    if (verb == "check") return check(svc, w);
    if (verb == "add" && w.size() <= 6) return add(svc, w);
    if (verb == "remove" && w.size() <= 4) return remove(svc, w);
    return "error: usage: suppress check ADDRESS [SCOPE...] | list [SCOPE|*] [LIMIT] [AFTER] | "
           "add ADDRESS [SCOPE|-] [REASON] [EXPIRES] | remove ADDRESS [SCOPE|-]\n";
}

}  // namespace kasi
