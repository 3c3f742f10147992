#include "core/queue/dsn_writer.h"

#include <cstring>

#include "core/classify/classifier.h"
#include "core/log/log.h"
#include "core/queue/dsn.h"
#include "core/smtp/client/reply_parser.h"
#include "core/smtp/seal.h"
#include "core/spool/spool.h"
#include "core/util/clock.h"
#include "core/util/ids.h"

namespace kasi {

namespace {

// A recorded reply line, "<code> [<x.y.z>] text", classified again.
Classification classify_recorded(const Classifier& rules, std::string_view line) {
    int code = 0;
    for (size_t i = 0; i < 3 && i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i)
        code = code * 10 + (line[i] - '0');
    std::string_view rest = line.size() > 4 ? line.substr(4) : std::string_view{};
    std::string_view enhanced = leading_enhanced_code(rest);
    return rules.classify(ClassifyInput{OutcomeKind::reply, code, enhanced, rest, "", "", ""});
}

}  // namespace

void DsnWriter::failure(const std::shared_ptr<QueuedMessage>& m) {
    std::weak_ptr<bool> alive = ctx_.alive;
    ctx_.bodies.read(*m, [this, alive, m](int err, std::string body) {
        if (!alive.lock()) return;
        if (err) body.clear();  // a DSN without the original is better than none
        write(m, std::move(body), {});
    });
}

void DsnWriter::delay_warning(const std::shared_ptr<QueuedMessage>& m,
                              const std::vector<uint32_t>& rcpts) {
    m->warned = true;
    std::weak_ptr<bool> alive = ctx_.alive;
    ctx_.bodies.read(*m, [this, alive, m, rcpts](int err, std::string body) {
        if (!alive.lock()) return;
        if (err) body.clear();
        write(m, std::move(body), rcpts);
    });
}

void DsnWriter::write(const std::shared_ptr<QueuedMessage>& m, std::string original,
                      const std::vector<uint32_t>& delayed) {
    const OutboundConfig& cfg = ctx_.cfg();
    DsnOptions o{ctx_.settings.me, cfg.bounce_include_message, cfg.max_age_ms, cfg.bounce_template};
    if (auto rules = cfg.classifier)
        o.classify = [rules](const std::string& line) { return classify_recorded(*rules, line); };
    std::string msgid;
    std::string dsn =
        build_dsn(dsn_input(*m, o, std::move(original), delayed, now_ms()), now_ms(), msgid);
    Envelope env;
    env.id = new_uuid() + ".1";
    seal(dsn, env.id);
    env.received_ms = now_ms();
    env.mail_from = "";
    env.rcpts.push_back(m->mail_from);
    env.helo = ctx_.settings.me;
    env.relaying = true;
    env.notes["kasi.dsn"] = m->id;
    env.tenant = m->tenant();
    auto dm = std::make_shared<QueuedMessage>();
    dm->id = env.id;
    dm->received_ms = env.received_ms;
    dm->set_rcpts(env.rcpts);
    dm->set_tags(env.tenant, "");
    dm->body_size = dsn.size();
    dm->is_dsn = true;
    bool warning = !delayed.empty();
    std::weak_ptr<bool> alive = ctx_.alive;
    auto post = post_;
    spool_.submit_message(
        env, std::move(dsn), [this, alive, post, m, dm, warning](const SpoolResult& r) {
            post([this, alive, m, dm, r, warning] {
                if (!alive.lock()) return;
                if (r.err) {
                    // A failed message is not finished: it is retried from
                    // the spool at the next start.
                    log::error("queue: {}: writing the {} failed: {}", m->id,
                               warning ? "delay warning" : "DSN", std::strerror(r.err));
                    return;
                }
                dm->segment = r.segment;
                dm->body_offset = r.body_offset;
                written(m, dm, warning);
            });
        });
}

void DsnWriter::written(const std::shared_ptr<QueuedMessage>& m, std::shared_ptr<QueuedMessage> dsn,
                        bool warning) {
    ++ctx_.stats.dsns;
    log::info("queue: {}: {} {} to <{}> queued", m->id, warning ? "delay warning" : "DSN", dsn->id,
              m->mail_from);
    queue_.enqueue(std::move(dsn));
    if (warning) return;  // the message itself is still being delivered
    ctx_.journal.done(*m);
    ctx_.release(*m);
}

// Mail Kasi writes itself gets the sealers relayed mail gets (DKIM signing as
// MAILER-DAEMON@me's domain), here on the delivery loop: such mail is rare.
void DsnWriter::seal(std::string& msg, const std::string& id) {
    const auto& hooks = ctx_.settings.hooks;
    if (!hooks || hooks->sealers().empty()) return;
    SealInput in;
    in.id = id;
    in.body = std::move(msg);
    for (const auto& err : seal_generated(*hooks, in)) log::warn("queue: {}: {}", id, err);
    msg = std::move(in.body);
}

}  // namespace kasi
