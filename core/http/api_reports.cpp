// POST /api/v1/reports: a bounce or complaint handed over by API instead of SMTP (providers
// that deliver feedback-loop reports or bounce notifications by webhook). The body is the
// report as a whole message (RFC 5322; LF line ends are accepted and made CRLF). It goes
// the way an SMTP report does: a local SMTP session gives it, with the null sender, to a
// report mailbox (`?to=` one of them, default the first feedback.ini address, else
// reports@ the first report domain), so it is spooled (202 = on disk) and read by the
// report transport (docs/bounces.md, "Reports that come back"). Needs the send scope.
#include <fmt/format.h>

#include "core/feedback/report_mailboxes.h"
#include "core/http/api.h"
#include "core/http/submission.h"
#include "core/server/server_config.h"
#include "core/smtp/address.h"
#include "core/util/ids.h"
#include "core/util/json.h"

namespace kasi {

namespace {

// Bare LF and bare CR become CRLF: the SMTP side refuses them (smuggling), and a report
// pasted by a webhook is often LF-only.
std::string crlf(const std::string& in) {
    std::string out;
    out.reserve(in.size() + in.size() / 40);
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '\r') {
            out += "\r\n";
            if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
        } else if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
    return out;
}

std::string default_mailbox(const ReportMailboxes& m) {
    if (!m.addresses().empty()) return m.addresses().front();
    return "reports@" + m.domains().front();
}

}  // namespace

void api_reports(const ApiEnv& env, const HttpRequest& req, HttpRespond respond) {
    const auto& mailboxes = env.cfg->reports;
    if (!mailboxes)
        return respond(HttpResponse::error(
            404, "", "no report mailboxes (feedback.ini addresses/domains, or verp.ini)"));
    if (req.body.empty())
        return respond(HttpResponse::error(400, "body", "the report message is missing"));
    std::string to = req.query_param("to");
    if (to.empty()) to = default_mailbox(*mailboxes);
    auto p = parse_path("<" + to + ">", false, true);
    if (!p.address || !mailboxes->accepts(to))
        return respond(
            HttpResponse::error(400, "to", fmt::format("'{}' is not a report mailbox", to)));
    auto txn = std::make_unique<Transaction>();
    txn->uuid = new_uuid() + ".1";
    txn->mail_from.null = true;  // a report, like a bounce, has the null sender
    txn->rcpts.push_back(*p.address);
    txn->body = crlf(req.body);
    std::string id = txn->uuid;
    LocalClient c;
    c.ip = env.peer;
    c.tls = env.tls;
    c.who = env.who;
    c.notes["api.client"] = env.who;
    auto sub = Submission::open(*env.sessions, session_config(env.cfg), std::move(c));
    sub->submit(std::move(txn), [respond, id, sub](SubmitResult r) {
        if (r.queued) {
            JsonObject o;
            o.boolean("ok", true).str("id", id);
            respond(HttpResponse::json(202, o.done()));
        } else {
            int status = r.reply.code >= 400 && r.reply.code < 500 ? 503 : 422;
            respond(HttpResponse::error(status, r.stage, r.reply.text()));
        }
        sub->quit();
    });
}

}  // namespace kasi
