#include "core/queue/report_transport.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

#include "core/feedback/bounce_parser.h"
#include "core/feedback/report_reader.h"
#include "core/log/log.h"
#include "core/queue/outcome.h"
#include "core/queue/report_hook.h"
#include "core/reputation/reputation_service.h"
#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

EventPeer report_peer() {
    EventPeer p;
    p.ready_queue = "reports";
    p.site = "local";
    return p;
}

// A report Kasi did not act on (not a bounce, forged, unmatched) is kept for an operator:
// <spool>/reports-kept/<id>.eml, synced before the report leaves the spool. "" or the error.
std::string keep(const std::string& dir, const std::string& id, const std::string& body) {
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return std::strerror(errno);
    std::string path = dir + "/" + id + ".eml", tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return std::strerror(errno);
    size_t off = 0;
    while (off < body.size()) {
        ssize_t n = ::write(fd, body.data() + off, body.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            return std::strerror(e);
        }
        off += size_t(n);
    }
    int rc = ::fdatasync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) return std::strerror(e);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return std::strerror(errno);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

}  // namespace

struct ReportTransport::Work {
    uv_work_t req{};
    ReportTransport* self = nullptr;
    std::unique_ptr<Delivery> d;
    std::string body;
    std::shared_ptr<const Classifier> classifier;
    std::shared_ptr<const VerpConfig> verp;
    std::string kept_dir;
    SuppressionService* suppressions = nullptr;
    ReportInput in;
    ReportOutcome out;
    std::vector<std::optional<SuppressionEntry>> plan;  // per match: the policy's
    std::vector<ReportAction> actions;                  // per match: after the hook
    std::vector<SuppressionEntry> adds;
    std::string keep_error;  // the report should have been kept (or its entries added) and
                             // could not be
};

void ReportTransport::take(std::unique_ptr<Delivery> d) {
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    const QueuedMessage& m = *(*holder)->msg;
    ctx_.bodies.read(m, [this, holder](int err, std::string body) {
        auto d = std::move(*holder);
        if (err != 0) {
            log::error("[{}] report: cannot read it from the spool: {}", d->msg->id,
                       std::strerror(err));
            outcome_.not_sent(
                std::move(d),
                local_reply(451, "4.3.0", "the report could not be read from the spool"),
                OutcomeKind::local, report_peer());
            return;
        }
        parse(std::move(d), std::move(body));
    });
}

void ReportTransport::parse(std::unique_ptr<Delivery> d, std::string body) {
    auto w = std::make_unique<Work>();
    w->self = this;
    w->classifier = ctx_.cfg().classifier;
    w->verp = ctx_.cfg().verp;
    w->kept_dir = ctx_.spool_dir + "/reports-kept";
    w->suppressions = ctx_.settings.suppressions;
    w->body = std::move(body);
    const QueuedMessage& m = *d->msg;
    w->in.report_id = m.id;
    w->in.mail_from = m.mail_from;
    for (uint32_t i : d->rcpts) w->in.to.push_back(m.rcpts[i].address);
    w->in.now_ms = now_ms();
    w->d = std::move(d);
    w->req.data = w.get();
    if (!w->classifier) {  // no rules loaded: nothing can be read; try again later
        w->keep_error = "no bounce classifier loaded";
        return parsed(std::move(w));
    }
    int rc = uv_queue_work(
        ctx_.loop, &w->req,
        [](uv_work_t* req) {
            auto* w = static_cast<Work*>(req->data);
            w->in.raw = w->body;
            BounceParser parser(w->classifier);
            w->out = read_report(w->in, parser, w->verp.get());
            if (w->out.matches.empty())
                w->keep_error = keep(w->kept_dir, w->in.report_id, w->body);
            else if (w->suppressions)
                w->plan = w->suppressions->plan_for_report(w->out, w->in.report_id);
            w->plan.resize(w->out.matches.size());
        },
        [](uv_work_t* req, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(req->data));
            w->self->parsed(std::move(w));
        });
    if (rc == 0) {
        (void)w.release();  // libuv owns it until the after-work callback
        return;
    }
    log::error("report: cannot queue the parse: {}", uv_strerror(rc));
    outcome_.not_sent(std::move(w->d),
                      local_reply(451, "4.3.0", "the report could not be parsed now"),
                      OutcomeKind::local, report_peer());
}

void ReportTransport::parsed(std::unique_ptr<Work> w) {
    const auto& out = w->out;
    const std::string& id = w->d->msg->id;
    if (!w->keep_error.empty()) return retry_later(std::move(w));
    ++counts_.read;
    switch (out.kind) {
        case ReportOutcome::Kind::bounce:
            ++counts_.bounce;
            break;
        case ReportOutcome::Kind::auto_reply:
            ++counts_.auto_reply;
            break;
        case ReportOutcome::Kind::complaint:
            ++counts_.complaint;
            break;
        case ReportOutcome::Kind::not_report:
            ++counts_.not_report;
            break;
        case ReportOutcome::Kind::forged:
            ++counts_.forged;
            break;
        case ReportOutcome::Kind::unmatched:
            ++counts_.unmatched;
            break;
    }
    if (out.matches.empty()) {
        log::notice("[{}] report from <{}>: {}: {} (not acted on)", id, w->in.mail_from,
                    report_kind_name(out.kind), out.why);
        return finish(std::move(w));
    }
    if (ctx_.hooks.has(Hook::inbound_report)) return ask_hook(std::move(w));
    for (auto& p : w->plan) w->actions.push_back(ReportAction{false, std::move(p)});
    act(std::move(w));
}

// The inbound_report hook, once for each matched recipient; act() when every answer is in.
void ReportTransport::ask_hook(std::unique_ptr<Work> work) {
    struct Pending {
        std::unique_ptr<Work> w;
        size_t waiting = 1;  // one for the loop below, so an answer given at once cannot end it
    };
    auto p = std::make_shared<Pending>();
    p->w = std::move(work);
    Work& w = *p->w;
    w.actions.resize(w.out.matches.size());
    std::weak_ptr<bool> alive = ctx_.alive;
    auto answered = [this, alive, p] {
        if (--p->waiting > 0 || !alive.lock()) return;
        act(std::move(p->w));
    };
    for (size_t i = 0; i < w.out.matches.size(); ++i) {
        ReportEvent ev = report_event(w.out, w.out.matches[i], w.in, w.plan[i]);
        ++p->waiting;
        ctx_.hooks.run_report(w.d->msg, ev, [p, i, ev, answered](Result r, OutboundAnswer& ans) {
            Work& w = *p->w;
            w.actions[i] = apply_report_answer(r, ans, ev, std::move(w.plan[i]), w.suppressions,
                                               now_ms() / 1000);
            answered();
        });
    }
    answered();
}

// The suppressions decided, made durable on the thread pool; then finish().
void ReportTransport::act(std::unique_ptr<Work> w) {
    for (const auto& a : w->actions)
        if (!a.vetoed && a.suppress) w->adds.push_back(*a.suppress);
    if (w->adds.empty() || !w->suppressions) return finish(std::move(w));
    w->req.data = w.get();
    int rc = uv_queue_work(
        ctx_.loop, &w->req,
        [](uv_work_t* req) {
            auto* w = static_cast<Work*>(req->data);
            if (!w->suppressions->add(w->adds, "report " + w->in.report_id, w->keep_error))
                w->keep_error = "suppression list: " + w->keep_error;
        },
        [](uv_work_t* req, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(req->data));
            if (!w->keep_error.empty()) return w->self->retry_later(std::move(w));
            w->self->finish(std::move(w));
        });
    if (rc == 0) {
        (void)w.release();  // libuv owns it until the after-work callback
        return;
    }
    w->keep_error = std::string("cannot queue the suppression: ") + uv_strerror(rc);
    retry_later(std::move(w));
}

// A bounce that came back (a DSN) or a complaint counts against the sending domain and
// tenant at the provider of the recipient, and against the egress source when the report
// names the address that sent (an ARF Source-IP that is one of egress.ini's sources; a DSN
// does not say).
void ReportTransport::count_in_reputation(ReportOutcome::Kind kind, const ReportMatch& m) {
    ReputationService* rep = ctx_.settings.reputation;
    if (!rep || (kind != ReportOutcome::Kind::bounce && kind != ReportOutcome::Kind::complaint))
        return;
    const auto& cls = m.bounce.classification;
    std::string provider = cls.provider;
    if (provider.empty() && ctx_.cfg().classifier)
        provider = std::string(
            ctx_.cfg().classifier->providers().provider_of(address_domain(m.recipient)));
    std::string_view source;
    if (auto ip = IpAddr::parse(m.source_ip))
        for (const auto& s : ctx_.cfg().egress.sources)
            if (s.address && *s.address == *ip) source = s.name;
    bool complaint = kind == ReportOutcome::Kind::complaint;
    rep->record(
        {source, to_lower(m.sending_domain), provider.empty() ? "other" : provider, m.tenant},
        complaint ? RepOutcome::complaint : RepOutcome::async_bounce, complaint ? "" : cls.cls,
        now_ms() / 1000);
}

// It stays in the spool and is read again later (a 451 for the outcome stage).
void ReportTransport::retry_later(std::unique_ptr<Work> w) {
    log::error("[{}] report: not finished, read again later: {}", w->d->msg->id, w->keep_error);
    outcome_.not_sent(
        std::move(w->d),
        local_reply(451, "4.3.0", "the report could not be handled: " + w->keep_error),
        OutcomeKind::local, report_peer());
}

// What the report said goes to the log and the event log; the report leaves the spool.
void ReportTransport::finish(std::unique_ptr<Work> w) {
    const auto& out = w->out;
    const std::string& id = w->d->msg->id;
    size_t written = 0;
    for (size_t i = 0; i < out.matches.size(); ++i) {
        if (i < w->actions.size() && w->actions[i].vetoed) continue;
        const auto& m = out.matches[i];
        log::info("[{}] report: {} for {} of {} ({}; matched by {})", id,
                  report_kind_name(out.kind), m.recipient,
                  m.message_id.empty() ? "?" : m.message_id,
                  m.feedback_type.empty() ? m.bounce.classification.reason +
                                                (m.bounce.classification.hard ? ", hard" : ", soft")
                                          : m.feedback_type,
                  m.matched_by);
        if (i < out.events.size()) {
            ctx_.events.other(out.events[i]);
            ++written;
        }
        count_in_reputation(out.kind, m);
        if (out.kind == ReportOutcome::Kind::complaint)
            ctx_.breaker.record(m.tenant, TenantBreaker::Outcome::complaint, now_ms());
        else if (out.kind == ReportOutcome::Kind::bounce && m.bounce.classification.hard)
            ctx_.breaker.record(m.tenant, TenantBreaker::Outcome::async_hard_bounce, now_ms());
    }
    counts_.events += written;
    if (written) ctx_.events.flush();  // reports are few; their events go now
    TxnOutcome t;
    SmtpReply ok = local_reply(
        250, "2.0.0", std::string("report read: ") + std::string(report_kind_name(out.kind)));
    for (size_t i = 0; i < w->d->rcpts.size(); ++i) {
        t.rcpt.push_back(ok);
        t.command.push_back("DATA");
    }
    t.final_reply = ok;
    outcome_.transaction(std::move(w->d), t, report_peer());
}

}  // namespace kasi
