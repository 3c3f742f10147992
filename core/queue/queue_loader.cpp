#include "core/queue/queue_loader.h"

namespace kasi {

std::shared_ptr<const std::string> QueueLoader::intern(const std::string& s) {
    auto it = intern_.find(s);
    if (it != intern_.end()) return it->second;
    if (intern_.size() >= 1024) intern_.clear();  // holders keep their strings alive
    auto p = std::make_shared<const std::string>(s);
    intern_.emplace(s, p);
    return p;
}

void QueueLoader::add(SpooledMessage& sm) {
    auto m = std::make_shared<QueuedMessage>();
    m->id = std::move(sm.env.id);
    m->received_ms = sm.env.received_ms;
    m->mail_from = std::move(sm.env.mail_from);
    m->rcpts.resize(sm.env.rcpts.size());
    for (size_t i = 0; i < m->rcpts.size(); ++i) {
        m->rcpts[i].address = std::move(sm.env.rcpts[i]);
        if (i >= sm.state.rcpts.size()) continue;
        m->rcpts[i].status = sm.state.rcpts[i].status;
        if (!sm.state.rcpts[i].last_reply.empty())
            m->rcpts[i].last_reply = intern(sm.state.rcpts[i].last_reply);
    }
    m->set_tags(sm.env.tenant, sm.env.campaign);
    for (auto& [k, v] : sm.env.notes)
        if (k.rfind("kasi.", 0) != 0) m->more().notes.emplace_back(k, std::move(v));
    m->segment = sm.segment;
    m->body_offset = sm.body_offset;
    m->body_size = sm.body_size;
    m->attempts = sm.state.attempts;
    m->is_dsn = sm.env.notes.count("kasi.dsn") > 0;
    m->is_report = sm.env.notes.count("kasi.report") > 0;
    m->recovered = true;
    items_.push_back(Item{std::move(m), sm.state.next_due_ms});
}

}  // namespace kasi
