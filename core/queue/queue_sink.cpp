#include "core/queue/queue_sink.h"

#include "core/queue/queued_message.h"

namespace kasi {

MessageSink::Durable QueueSink::prepare(const Envelope& env, uint64_t body_size) {
    auto qm = std::make_shared<QueuedMessage>();
    qm->id = env.id;
    qm->received_ms = env.received_ms;
    qm->mail_from = env.mail_from;
    qm->set_rcpts(env.rcpts);
    qm->set_tags(env.tenant, env.campaign);
    for (const auto& [k, v] : env.notes)
        if (k.rfind("kasi.", 0) != 0) qm->more().notes.emplace_back(k, v);
    qm->is_report = env.notes.count("kasi.report") > 0;  // as queue_loader.cpp reads it
    qm->body_size = body_size;
    return [outbound = &outbound_, qm](const SpoolResult& where) {
        qm->segment = where.segment;
        qm->body_offset = where.body_offset;
        outbound->submit(qm);
    };
}

}  // namespace kasi
