// POST /unsubscribe/TOKEN: RFC 8058 one-click unsubscribe, for List-Unsubscribe URLs that
// point at Kasi (unsubscribe.ini url = https://mta.example.com/unsubscribe/{token}). The
// token is the authorisation: its HMAC is checked with unsubscribe.ini's secret. A valid
// request is answered 200 and written to the event log as an "Unsubscribe" event (with the
// recipient, list and tenant) for the sender's systems to act on; suppression lists consume
// it in a later step. A bad or forged token gets 400 and nothing is recorded. The body
// should be "List-Unsubscribe=One-Click" (RFC 8058 §3.2); mail clients that send it as
// multipart/form-data are accepted as well.
#include "core/http/api.h"
#include "core/log/log.h"
#include "core/queue/outbound.h"
#include "core/server/server_config.h"
#include "core/smtp/unsubscribe.h"
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
    respond(HttpResponse::json(200, o.done()));
}

}  // namespace kasi
