// POST /unsubscribe/TOKEN: RFC 8058 one-click unsubscribe, for List-Unsubscribe URLs that
// point at Kasi (unsubscribe.ini url = https://mta.example.com/unsubscribe/{token}). The
// token is the authorisation: its HMAC is checked with unsubscribe.ini's secret. A valid
// request is answered 200 and written to the event log as an "Unsubscribe" event (with the
// recipient, list and tenant) for the sender's systems to act on, and the recipient is added
// to the suppression list (suppression.ini [policy] unsubscribe; docs/suppression.md). A bad or
// forged token gets 400 and nothing is recorded. The body should be "List-Unsubscribe=One-Click"
// (RFC 8058 §3.2); mail clients that send it as multipart/form-data are accepted as well.
#include "core/http/api.h"
#include "core/log/log.h"
#include "core/queue/outbound.h"
#include "core/server/server_config.h"
#include "core/smtp/unsubscribe.h"
#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"
#include "core/util/json.h"

namespace kasi {

void api_unsubscribe(const ApiEnv& env, const std::string& token, const HttpRequest& req,
                     HttpRespond respond) {
    if (!env.cfg->unsubscribe)
        return respond(HttpResponse::error(404, "", "one-click unsubscribe is not configured"));
    if (req.body.find("List-Unsubscribe=One-Click") == std::string::npos)
        return respond(
            HttpResponse::error(400, "body", "expected List-Unsubscribe=One-Click (RFC 8058)"));
    auto t = verify_unsubscribe_token(env.cfg->unsubscribe->secret(), token);
    if (!t) {
        log::info("http: unsubscribe from {} with a bad token", env.peer.str());
        return respond(HttpResponse::error(400, "token", "invalid or forged token"));
    }
    JsonObject ev;
    ev.str("type", "Unsubscribe").num("time_ms", now_ms()).str("recipient", t->recipient);
    if (!t->list.empty()) ev.str("list", t->list);
    if (!t->tenant.empty()) ev.str("tenant", t->tenant);
    ev.num("issued_s", t->issued_s).str("client_ip", env.peer.str());
    log::notice("unsubscribe: {} (list '{}', tenant '{}')", t->recipient, t->list, t->tenant);
    if (env.outbound) env.outbound->log_event(ev.done());
    JsonObject o;
    o.boolean("ok", true).str("recipient", t->recipient);
    auto answer = HttpResponse::json(200, o.done());
    if (!env.suppressions) return respond(std::move(answer));
    // The 200 means the suppression entry is on disk: added (fdatasync) off the loop.
    struct Work {
        uv_work_t req{};
        SuppressionService* svc;
        std::string rcpt, tenant, err;
        bool ok = false;
        HttpResponse answer;
        HttpRespond respond;
    };
    auto w = std::make_unique<Work>();
    w->svc = env.suppressions;
    w->rcpt = t->recipient;
    w->tenant = t->tenant;
    w->answer = std::move(answer);
    w->respond = std::move(respond);
    w->req.data = w.get();
    int rc = uv_queue_work(
        env.loop, &w->req,
        [](uv_work_t* r) {
            auto* w = static_cast<Work*>(r->data);
            w->ok = w->svc->unsubscribe_now(w->rcpt, w->tenant, "unsubscribe", w->err);
        },
        [](uv_work_t* r, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(r->data));
            if (!w->ok) {
                log::error("unsubscribe: {} not added to the suppression list: {}", w->rcpt,
                           w->err);
                return w->respond(HttpResponse::error(503, "", "try again later"));
            }
            w->respond(std::move(w->answer));
        });
    if (rc != 0) return w->respond(HttpResponse::error(503, "", uv_strerror(rc)));
    (void)w.release();  // libuv owns it until the after-work callback
}

}  // namespace kasi
