#include "core/queue/report_hook.h"

#include "core/log/log.h"
#include "core/suppression/suppression_service.h"

namespace kasi {

namespace {

SuppressionReason default_reason(const ReportEvent& ev) {
    if (ev.kind == "complaint")
        return ev.feedback_type == "opt-out" || ev.feedback_type == "unsubscribe"
                   ? SuppressionReason::unsubscribe
                   : SuppressionReason::complaint;
    if (ev.kind == "bounce")
        return ev.classification.hard ? SuppressionReason::hard_bounce
                                      : SuppressionReason::soft_bounce;
    return SuppressionReason::manual;
}

// The override's changes to `e`; false (logged) when one of them is not valid.
bool change_entry(const ReportOverride& o, const ReportEvent& ev, SuppressionEntry& e,
                  int64_t now) {
    if (o.scope) {
        std::string scope = *o.scope == "global" ? std::string() : *o.scope;
        std::string err;
        if (!valid_scope(scope, err)) {
            log::warn("[{}] inbound_report: scope '{}' ignored: {}", ev.report_id, *o.scope, err);
            return false;
        }
        e.scope = scope;
    }
    if (o.reason) {
        auto r = parse_reason(*o.reason);
        if (!r) {
            log::warn("[{}] inbound_report: unknown suppression reason '{}' ignored", ev.report_id,
                      *o.reason);
            return false;
        }
        e.reason = *r;
    }
    if (o.expires_in_s) e.expires = *o.expires_in_s > 0 ? now + *o.expires_in_s : 0;
    return true;
}

}  // namespace

ReportEvent report_event(const ReportOutcome& out, const ReportMatch& m, const ReportInput& in,
                         const std::optional<SuppressionEntry>& planned) {
    ReportEvent ev;
    ev.kind = std::string(report_kind_name(out.kind));
    ev.report_id = in.report_id;
    ev.report_from = in.mail_from;
    ev.message_id = m.message_id;
    ev.rcpt = m.recipient;
    ev.tenant = m.tenant;
    ev.sending_domain = m.sending_domain;
    ev.matched_by = m.matched_by;
    ev.action = m.bounce.action;
    ev.status = m.bounce.status;
    ev.diagnostic = m.bounce.diagnostic;
    ev.remote_mta = m.bounce.remote_mta;
    ev.code = m.bounce.reply_code;
    ev.classification = m.bounce.classification;
    ev.feedback_type = m.feedback_type;
    ev.source_ip = m.source_ip;
    ev.user_agent = m.user_agent;
    if (planned) {
        ev.suppress = true;
        ev.scope = planned->scope;
        ev.reason = std::string(reason_name(planned->reason));
        ev.expires = planned->expires;
    }
    return ev;
}

ReportAction apply_report_answer(const Result& r, const OutboundAnswer& ans, const ReportEvent& ev,
                                 std::optional<SuppressionEntry> planned,
                                 const SuppressionService* svc, int64_t now) {
    ReportAction a;
    if (r.code == Code::deny) {
        log::notice("[{}] inbound_report: {} for {} vetoed{}", ev.report_id, ev.kind, ev.rcpt,
                    r.msg.empty() ? "" : ": " + r.msg);
        a.vetoed = true;
        return a;
    }
    a.suppress = std::move(planned);
    if (r.code != Code::ok || !ans.report) {
        if (r.code != Code::ok && r.code != Code::cont)
            log::warn("[{}] inbound_report: {} is not an answer here; the plan stands",
                      ev.report_id, code_name(r.code));
        return a;
    }
    const ReportOverride& o = *ans.report;
    bool suppress = o.suppress.value_or(a.suppress.has_value());
    if (!suppress) {
        a.suppress.reset();
        return a;
    }
    SuppressionEntry e;
    if (a.suppress) {
        e = *a.suppress;
    } else if (svc) {
        auto p = svc->policy();
        e = svc->entry(ev.rcpt, p->scope_for(ev.tenant, ev.sending_domain), default_reason(ev),
                       ev.report_id, now);
    } else {
        log::warn("[{}] inbound_report: suppress ignored: no suppression list", ev.report_id);
        return a;
    }
    if (change_entry(o, ev, e, now)) a.suppress = std::move(e);
    return a;
}

}  // namespace kasi
