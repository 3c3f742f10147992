// GET /metrics: Prometheus' text format (version 0.0.4). Three parts: the process-wide
// counters (core/metrics), what the delivery loop knows (queue_metrics.cpp, asked on its own
// loop) with the reputation matrix's gauges, and what the extensions publish (policies' kasi.metrics: core/server/extensions.h).
#include <fmt/format.h>

#include "core/http/api.h"
#include "core/http/http_config.h"
#include "core/metrics/metrics.h"
#include "core/queue/outbound.h"
#include "core/queue/queue_manager.h"
#include "core/reputation/reputation_service.h"
#include "core/server/extensions.h"
#include "core/server/loop_inbox.h"
#include "core/server/server_config.h"

namespace kasi {

void api_metrics(const ApiEnv& env, HttpRespond respond) {
    std::string head = fmt::format(
        "# HELP kasi_build_info the running version\n# TYPE kasi_build_info gauge\n"
        "kasi_build_info{{version=\"{}\"}} 1\n"
        "# HELP kasi_config_generation the configuration generation in effect\n"
        "# TYPE kasi_config_generation gauge\nkasi_config_generation {}\n",
        KASI_VERSION, env.cfg->generation);
    head += CoreMetrics::global().render();
    auto finish = [respond = std::move(respond)](std::string text) {
        HttpResponse r = HttpResponse::text(200, std::move(text));
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        respond(std::move(r));
    };
    if (!env.outbound) return finish(head + extensions().prometheus());
    LoopInbox* inbox = env.inbox;
    size_t top = env.http->metrics_queues;
    env.outbound->inspect([inbox, top, head = std::move(head),
                           finish = std::move(finish)](const QueueManager* qm) mutable {
        std::string text = std::move(head);
        if (qm) text += qm->prometheus(top);
        if (qm && qm->settings().reputation) text += qm->settings().reputation->prometheus();
        text += extensions().prometheus();
        inbox->post([text = std::move(text), finish = std::move(finish)]() mutable {
            finish(std::move(text));
        });
    });
}

}  // namespace kasi
