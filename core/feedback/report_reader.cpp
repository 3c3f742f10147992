#include "core/feedback/report_reader.h"

#include <cctype>

#include "core/classify/classification.h"
#include "core/feedback/arf_parser.h"
#include "core/feedback/bounce_parser.h"
#include "core/queue/verp.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

std::string domain_of(std::string_view a) {
    return to_lower(address_domain(a));
}

std::string local_of(std::string_view a) {
    auto at = a.rfind('@');
    return to_lower(a.substr(0, at));
}

// The id in "<ID@host>" when ID is Kasi's form.
std::string id_from_message_id(std::string_view mid) {
    mid = trim(mid);
    if (!mid.empty() && mid.front() == '<') mid.remove_prefix(1);
    auto at = mid.find('@');
    if (at == std::string_view::npos) return {};
    auto id = mid.substr(0, at);
    return looks_like_kasi_id(id) ? std::string(id) : std::string();
}

struct VerpHit {
    bool forged = false;
    std::string why;
    std::optional<VerpAddress> addr;
    std::string rp_domain;
};

VerpHit verp_of(const VerpConfig* verp, const std::vector<std::string>& to) {
    VerpHit h;
    if (!verp) return h;
    for (const auto& a : to) {
        std::string why;
        auto v = verp_decode(verp->secret(), verp->prefix(), a, why);
        if (v) {
            h.addr = v;
            h.rp_domain = domain_of(a);
            return h;
        }
        // the prefix's form ("b-...") at a return-path domain, but not a valid address
        auto local = local_of(a);
        if (local.rfind(verp->prefix() + "-", 0) == 0 && local.size() > verp->prefix().size() + 8) {
            h.forged = true;
            h.why = a + ": " + why;
        }
    }
    return h;
}

std::string event_json(const ReportInput& in, const BounceReport& r, const ReportMatch& m) {
    const auto& b = m.bounce;
    const char* type = r.kind == BounceReport::Kind::auto_reply ? "AutoReply"
                       : b.action == "delayed"                  ? "TransientFailure"
                       : b.action == "delivered" || b.action == "relayed" || b.action == "expanded"
                           ? "Delivery"
                           : "Bounce";
    JsonObject o;
    o.str("type", type).boolean("async", true).num("time_ms", in.now_ms);
    o.str("id", m.message_id).str("recipient", m.recipient);
    if (!m.tenant.empty()) o.str("tenant", m.tenant);
    if (!m.sending_domain.empty()) o.str("sending_domain", m.sending_domain);
    o.str("matched_by", m.matched_by).str("report_id", in.report_id).str("format", r.format);
    if (!r.addresser.empty()) o.str("sender", r.addresser);
    o.str("action", b.action).num("code", b.reply_code).str("enhanced", b.status);
    o.str("response", b.diagnostic).str("remote_mta", b.remote_mta);
    const auto& c = b.classification;
    o.str("reason", c.reason).str("class", c.cls).boolean("hard", c.hard);
    o.str("scope", scope_name(c.scope)).str("provider", c.provider);
    return o.done();
}

std::string complaint_json(const ReportInput& in, const ComplaintReport& c, const ReportMatch& m) {
    JsonObject o;
    o.str("type", "Complaint").num("time_ms", in.now_ms);
    o.str("id", m.message_id).str("recipient", m.recipient);
    if (!m.tenant.empty()) o.str("tenant", m.tenant);
    if (!m.sending_domain.empty()) o.str("sending_domain", m.sending_domain);
    o.str("matched_by", m.matched_by).str("report_id", in.report_id).str("format", c.format);
    o.str("feedback_type", c.feedback_type).str("sender", c.original_mail_from);
    o.str("source_ip", c.source_ip).str("user_agent", c.user_agent);
    o.str("arrival_date", c.arrival_date);
    if (!c.reported_domains.empty()) o.str("reported_domain", c.reported_domains.front());
    return o.done();
}

ReportOutcome read_complaint(const ReportInput& in, const ComplaintReport& c,
                             const VerpConfig* verp) {
    ReportOutcome out;
    std::vector<std::string> paths = in.to;
    for (const auto& a : {c.original_return_path, c.original_mail_from})
        if (!a.empty()) paths.push_back(a);
    auto hit = verp_of(verp, paths);
    if (hit.forged && !hit.addr) {
        out.kind = ReportOutcome::Kind::forged;
        out.why = "a VERP address that Kasi did not make (" + hit.why + ")";
        return out;
    }
    std::string by_mid = id_from_message_id(c.original_message_id);
    std::vector<std::string> who = c.recipients;
    if (hit.addr && !hit.addr->recipient.empty()) who = {to_lower(hit.addr->recipient)};
    for (const auto& rcpt : who) {
        ReportMatch m;
        m.feedback_type = c.feedback_type;
        m.source_ip = c.source_ip;
        m.user_agent = c.user_agent;
        m.tenant = verp && hit.addr ? verp->tenant_of(hit.rp_domain) : std::string();
        // the sending domain: the returned message's From, as for a bounce; else the
        // envelope sender unless that is one of Kasi's VERP return paths
        m.sending_domain = domain_of(!c.original_from.empty() ? c.original_from
                                     : hit.addr               ? std::string()
                                                              : c.original_mail_from);
        m.recipient = rcpt;
        if (hit.addr) {
            m.message_id = hit.addr->message_id;
            m.matched_by = "verp";
        } else if (!by_mid.empty()) {
            m.message_id = by_mid;
            m.matched_by = "message-id";
        } else {
            continue;
        }
        if (m.recipient.empty()) continue;  // redacted: nobody to act on
        out.matches.push_back(std::move(m));
    }
    if (out.matches.empty()) {
        out.kind = ReportOutcome::Kind::unmatched;
        out.why = "a complaint that names no message and recipient Kasi can find";
        return out;
    }
    out.kind = ReportOutcome::Kind::complaint;
    for (const auto& m : out.matches) out.events.push_back(complaint_json(in, c, m));
    return out;
}

}  // namespace

bool looks_like_kasi_id(std::string_view s) {
    if (s.size() < 36) return false;
    for (size_t i = 0; i < 36; ++i) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !(std::isdigit(static_cast<unsigned char>(c)) || (c >= 'A' && c <= 'F')))
            return false;
    }
    auto tail = s.substr(36);
    if (tail.empty()) return true;
    if (tail.size() < 2 || tail.front() != '.') return false;
    for (char c : tail.substr(1))
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

std::string_view report_kind_name(ReportOutcome::Kind k) {
    switch (k) {
        case ReportOutcome::Kind::bounce:
            return "bounce";
        case ReportOutcome::Kind::auto_reply:
            return "auto_reply";
        case ReportOutcome::Kind::complaint:
            return "complaint";
        case ReportOutcome::Kind::not_report:
            return "not_report";
        case ReportOutcome::Kind::forged:
            return "forged";
        case ReportOutcome::Kind::unmatched:
            return "unmatched";
    }
    return "?";
}

ReportOutcome read_report(const ReportInput& in, const BounceParser& bounces,
                          const VerpConfig* verp) {
    if (auto c = parse_complaint(in.raw); c.kind == ComplaintReport::Kind::complaint)
        return read_complaint(in, c, verp);
    ReportOutcome out;
    auto r = bounces.parse(in.raw);
    if (r.kind == BounceReport::Kind::not_bounce) {
        out.why = r.why;
        return out;
    }
    auto hit = verp_of(verp, in.to);
    if (hit.forged && !hit.addr) {
        out.kind = ReportOutcome::Kind::forged;
        out.why = "a VERP address that Kasi did not make (" + hit.why + ")";
        return out;
    }
    std::string by_mid = id_from_message_id(r.original_message_id);
    std::string tenant = verp && hit.addr ? verp->tenant_of(hit.rp_domain) : std::string();
    // the sending domain: the returned message's From (the addresser), if it came back
    std::string sending = domain_of(r.addresser);
    for (auto& b : r.recipients) {
        ReportMatch m;
        m.bounce = b;
        m.tenant = tenant;
        m.sending_domain = sending;
        if (hit.addr) {
            m.message_id = hit.addr->message_id;
            m.recipient = hit.addr->recipient.empty() ? b.recipient : hit.addr->recipient;
            m.matched_by = "verp";
            // a VERP bounce is about one recipient: the one in the address
            if (!hit.addr->recipient.empty() && !b.recipient.empty() &&
                to_lower(hit.addr->recipient) != b.recipient && r.recipients.size() > 1)
                continue;
        } else if (!by_mid.empty()) {
            m.message_id = by_mid;
            m.recipient = b.recipient;
            m.matched_by = "message-id";
        } else {
            continue;
        }
        out.matches.push_back(std::move(m));
    }
    if (out.matches.empty()) {
        out.kind = ReportOutcome::Kind::unmatched;
        out.why = "neither a VERP address of Kasi's nor a Message-ID Kasi wrote";
        return out;
    }
    out.kind = r.kind == BounceReport::Kind::auto_reply ? ReportOutcome::Kind::auto_reply
                                                        : ReportOutcome::Kind::bounce;
    for (const auto& m : out.matches) out.events.push_back(event_json(in, r, m));
    return out;
}

}  // namespace kasi
