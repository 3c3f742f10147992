#include "core/queue/intake.h"

#include "core/metrics/metrics.h"

#include "core/queue/outbound.h"
#include "core/queue/queued_message.h"
#include "core/util/clock.h"

namespace kasi {

void spool_and_queue(Spool& spool, Outbound* outbound, Transaction& txn, const IntakeSource& src,
                     std::function<void(const SpoolResult&)> done) {
    Envelope env;
    env.id = txn.uuid;
    env.received_ms = now_ms();
    env.mail_from = txn.mail_from.str();
    for (const auto& r : txn.rcpts) env.rcpts.push_back(r.str());
    env.client_ip = src.client_ip;
    env.helo = src.helo;
    env.auth_user = src.auth_user;
    env.tls = src.tls;
    env.relaying = src.relaying;
    env.notes = txn.notes;
    if (auto it = env.notes.find("tenant"); it != env.notes.end()) env.tenant = it->second;
    if (auto it = env.notes.find("campaign"); it != env.notes.end()) env.campaign = it->second;
    // What delivery needs, handed over as soon as the message is durable: the queue must
    // get it even if the client is gone by then.
    auto qm = std::make_shared<QueuedMessage>();
    qm->id = env.id;
    qm->received_ms = env.received_ms;
    qm->mail_from = env.mail_from;
    qm->set_rcpts(env.rcpts);
    qm->set_tags(env.tenant, env.campaign);
    for (const auto& [k, v] : env.notes)
        if (k.rfind("kasi.", 0) != 0) qm->more().notes.emplace_back(k, v);
    qm->body_size = txn.body.size();
    spool.submit_message(
        env, std::move(txn.body),
        [outbound, qm, http = src.http, done = std::move(done)](const SpoolResult& r) {
            if (r.err == 0) {
                auto& cm = CoreMetrics::global();
                (http ? cm.received_http : cm.received_smtp)
                    .fetch_add(1, std::memory_order_relaxed);
                cm.recipients_received.fetch_add(qm->rcpts.size(), std::memory_order_relaxed);
            }
            if (r.err == 0 && outbound) {
                qm->segment = r.segment;
                qm->body_offset = r.body_offset;
                outbound->submit(qm);
            }
            done(r);
        });
}

}  // namespace kasi
