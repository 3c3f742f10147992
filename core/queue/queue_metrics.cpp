// The delivery loop's part of GET /metrics. Rendered on the delivery loop (the HTTP worker
// asks through Outbound::inspect), so it reads the queues without locks. Cardinality: the
// outcome counters (outcome.cpp) are keyed by (provider, egress source), both bounded
// (metrics/provider.h and the configured sources; past 1,000 pairs everything lands in
// ("other", "other")), and per-queue series exist only for the top_n ready queues by
// waiting deliveries.
#include <algorithm>

#include <fmt/format.h>

#include "core/queue/queue_manager.h"
#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"

namespace kasi {

namespace {

std::string esc(std::string_view v) {
    std::string o;
    for (char c : v) {
        if (c == '\\' || c == '"') o += '\\';
        if (c == '\n') {
            o += "\\n";
            continue;
        }
        o += c;
    }
    return o;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// The list shared through PostgreSQL (core/suppression/suppression_replica.h).
void suppression_pg_metrics(std::string& o, const SuppressionReplicaStatus& pg) {
    family(o, "kasi_suppression_pg_connected", "gauge",
           "1 while the shared suppression list's PostgreSQL answers");
    o += fmt::format("kasi_suppression_pg_connected {}\n", pg.connected ? 1 : 0);
    family(o, "kasi_suppression_pg_pending", "gauge",
           "suppression changes of this node that PostgreSQL has not confirmed yet");
    o += fmt::format("kasi_suppression_pg_pending {}\n", pg.pending);
    family(o, "kasi_suppression_pg_last_pull_seconds", "gauge",
           "unix time of the last complete pull of the shared suppression list");
    o += fmt::format("kasi_suppression_pg_last_pull_seconds {}\n", pg.last_pull_ms / 1000);
}

}  // namespace

std::string QueueManager::prometheus(size_t top_n) const {
    std::string o;
    static const char* names[] = {"delivered", "deferred", "bounced", "expired"};
    family(o, "kasi_recipients_total", "counter",
           "recipient outcomes by mailbox provider, egress source and classification");
    for (const auto& [key, counts] : outcome_.counts())
        for (int i = 0; i < 4; ++i) {
            if (!counts[size_t(i)]) continue;
            o += fmt::format(
                "kasi_recipients_total{{outcome=\"{}\",provider=\"{}\",source=\"{}\","
                "class=\"{}\",reason=\"{}\"}} {}\n",
                names[i], esc(key.provider), esc(key.source), esc(key.cls), esc(key.reason),
                counts[size_t(i)]);
        }
    auto s = stats();
    family(o, "kasi_queue_deliveries", "gauge", "deliveries by stage");
    o += fmt::format("kasi_queue_deliveries{{stage=\"scheduled\"}} {}\n", s.scheduled);
    o += fmt::format("kasi_queue_deliveries{{stage=\"routing\"}} {}\n", s.routing);
    o += fmt::format("kasi_queue_deliveries{{stage=\"ready\"}} {}\n", s.ready);
    o += fmt::format("kasi_queue_deliveries{{stage=\"in_flight\"}} {}\n", s.in_flight);
    family(o, "kasi_queue_messages", "gauge", "messages in the queue");
    o += fmt::format("kasi_queue_messages {}\n", s.messages);
    family(o, "kasi_outbound_connections", "gauge", "outbound SMTP connections open");
    o += fmt::format("kasi_outbound_connections {}\n", s.connections);
    family(o, "kasi_dsns_total", "counter", "delivery status notifications generated");
    o += fmt::format("kasi_dsns_total {}\n", s.dsns);
    const auto& rc = reports_.counts();
    family(o, "kasi_reports_total", "counter",
           "reports read at report mailboxes, by what they were (docs/bounces.md)");
    for (auto [kind, n] : {std::pair<const char*, uint64_t>{"bounce", rc.bounce},
                           {"complaint", rc.complaint},
                           {"auto_reply", rc.auto_reply},
                           {"not_report", rc.not_report},
                           {"forged", rc.forged},
                           {"unmatched", rc.unmatched}})
        o += fmt::format("kasi_reports_total{{kind=\"{}\"}} {}\n", kind, n);
    if (const auto* sv = ctx_.settings.suppressions) {
        family(o, "kasi_suppressions", "gauge", "entries on the suppression list, by reason");
        for (auto r : all_suppression_reasons)
            o += fmt::format("kasi_suppressions{{reason=\"{}\"}} {}\n", reason_name(r),
                             sv->count(r));
        family(o, "kasi_suppression_refusals_total", "counter",
               "recipients refused at RCPT or stopped before delivery by the suppression list");
        o += fmt::format("kasi_suppression_refusals_total {}\n", sv->refusals());
        if (auto pg = sv->sharing()) suppression_pg_metrics(o, *pg);
    }
    int64_t now = now_ms();
    size_t states[5] = {};  // active, waiting, backoff, suspended, idle
    std::vector<const ReadyQueue*> busy;
    for (const auto& [key, rq] : ready_.all()) {
        size_t st = !rq->suspended().empty() ? 3
                    : rq->backing_off(now)   ? 2
                    : rq->connections() > 0  ? 0
                    : rq->waiting() > 0      ? 1
                                             : 4;
        ++states[st];
        busy.push_back(rq.get());
    }
    family(o, "kasi_ready_queues", "gauge", "ready queues by state");
    static const char* st_names[] = {"active", "waiting", "backoff", "suspended", "idle"};
    for (int i = 0; i < 5; ++i)
        o += fmt::format("kasi_ready_queues{{state=\"{}\"}} {}\n", st_names[i], states[i]);
    size_t n = std::min(top_n, busy.size());
    std::partial_sort(busy.begin(), busy.begin() + long(n), busy.end(), [](auto* a, auto* b) {
        return a->waiting() + a->in_flight() > b->waiting() + b->in_flight();
    });
    family(o, "kasi_ready_queue_waiting", "gauge",
           "deliveries waiting in the busiest ready queues (the rest summed as other)");
    std::string conns;
    size_t other_wait = 0, other_conns = 0;
    for (size_t i = 0; i < busy.size(); ++i) {
        if (i < n) {
            o += fmt::format("kasi_ready_queue_waiting{{queue=\"{}\"}} {}\n", esc(busy[i]->key()),
                             busy[i]->waiting());
            conns += fmt::format("kasi_ready_queue_connections{{queue=\"{}\"}} {}\n",
                                 esc(busy[i]->key()), busy[i]->connections());
        } else {
            other_wait += busy[i]->waiting();
            other_conns += busy[i]->connections();
        }
    }
    if (busy.size() > n) {
        o += fmt::format("kasi_ready_queue_waiting{{queue=\"other\"}} {}\n", other_wait);
        conns += fmt::format("kasi_ready_queue_connections{{queue=\"other\"}} {}\n", other_conns);
    }
    family(o, "kasi_ready_queue_connections", "gauge",
           "connections of the busiest ready queues (the rest summed as other)");
    o += conns;
    family(o, "kasi_adaptive_actions", "gauge",
           "automation rules' actions in force (docs/adaptive.md)");
    o += fmt::format("kasi_adaptive_actions {}\n", shaping_.actions());
    o += ctx_.breaker.prometheus();
    return o;
}

}  // namespace kasi
