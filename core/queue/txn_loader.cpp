#include "core/queue/txn_loader.h"

#include <cstring>

#include "core/log/log.h"
#include "core/smtp/client/dot_stuff.h"

namespace kasi {

const std::string* verp_return_domain(const OutboundConfig& cfg, const QueuedMessage& m) {
    if (!cfg.verp || m.mail_from.empty() || m.is_dsn) return nullptr;
    return m.note("verp.domain");
}

void load_transaction(BodyStore& bodies, const OutboundConfig& cfg, const Delivery& d,
                      std::function<void(bool, OutTxn)> cb) {
    auto m = d.msg;
    std::vector<std::string> rcpts;
    for (uint32_t i : d.rcpts) rcpts.push_back(m->rcpts[i].address);
    const std::string* rp = verp_return_domain(cfg, *m);
    int first = rp && d.rcpts.size() == 1 ? int(d.rcpts[0]) : -1;
    std::shared_ptr<const VerpConfig> verp = rp ? cfg.verp : nullptr;
    bodies.read(*m, [m, rcpts = std::move(rcpts), cb = std::move(cb), rp, first, verp](
                        int err, std::string body) mutable {
        if (err) {
            log::error("queue: {}: reading the message from the spool: {}", m->id,
                       std::strerror(err));
            return cb(false, OutTxn{});
        }
        OutTxn t;
        t.mail_from = m->mail_from;
        if (first >= 0 && verp)
            if (auto a = verp_encode(verp->secret(), verp->prefix(), *rp, m->id,
                                     m->rcpts[size_t(first)].address, first);
                !a.empty())
                t.mail_from = std::move(a);
        t.rcpts = std::move(rcpts);
        t.size = body.size();
        t.eightbit = has_8bit(body);
        auto wire = std::make_shared<std::string>();
        append_dot_stuffed(*wire, body);
        t.wire = std::move(wire);
        cb(true, std::move(t));
    });
}

}  // namespace kasi
