// The admin endpoints: the control socket's commands over HTTP (kasictl uses either).
//   GET  /api/v1/admin/status | queue | adaptive (the automation rules' actions in force)
//   POST /api/v1/admin/reload | reopen-logs
//   POST /api/v1/admin/flush    {"domain": "example.com"}             (domain optional)
//   POST /api/v1/admin/suspend  {"domain": D | "queue": KEY, "reason": "..."}
//   POST /api/v1/admin/resume   {"domain": D | "queue": KEY}
//   POST /api/v1/admin/delete   {"id": ID | "domain": D}
//   POST /api/v1/admin/bounce   {"id": ID | "domain": D}
//   POST /api/v1/admin/suppress {"args": "check a@b.example"}  (docs/suppression.md)
//   POST /api/v1/admin/tenant   {"args": "pause acme too many bounces"}  (docs/adaptive.md)
// The same fields may come as query parameters instead of a JSON body. A body is parsed
// with the API's limits (core/http/json_parse.h).
#include <rapidjson/document.h>

#include <fmt/format.h>

#include "core/http/api.h"
#include "core/http/http_config.h"
#include "core/http/json_parse.h"
#include "core/log/log.h"
#include "core/queue/outbound.h"
#include "core/server/loop_inbox.h"
#include "core/util/json.h"

namespace kasi {

namespace {

// A field from the JSON body or the query string; false with an error response if the
// body is not a JSON object or the field is not a string.
bool field(const rapidjson::Document& doc, const HttpRequest& req, const char* name,
           std::string& out, HttpResponse& err) {
    if (doc.IsObject() && doc.HasMember(name)) {
        const auto& v = doc[name];
        if (!v.IsString()) {
            err = HttpResponse::error(400, name, "must be a string");
            return false;
        }
        out.assign(v.GetString(), v.GetStringLength());
        return true;
    }
    out = req.query_param(name);
    return true;
}

bool bad_word(const std::string& s) {
    return s.find_first_of(" \t\r\n") != std::string::npos;
}

// The control line for `action`, or an error response.
std::optional<std::string> control_line(const std::string& action, const HttpRequest& req,
                                        size_t max_body, HttpResponse& err) {
    rapidjson::Document doc;
    if (!req.body.empty()) {
        std::string why;
        if (!parse_json(doc, req.body, JsonLimits{.max_bytes = max_body}, why)) {
            err = HttpResponse::error(400, "", why);
            return std::nullopt;
        }
        if (!doc.IsObject()) {
            err = HttpResponse::error(400, "", "the body must be a JSON object");
            return std::nullopt;
        }
    }
    std::string domain, queue, id, reason, args;
    if (!field(doc, req, "domain", domain, err) || !field(doc, req, "queue", queue, err) ||
        !field(doc, req, "id", id, err) || !field(doc, req, "reason", reason, err) ||
        !field(doc, req, "args", args, err))
        return std::nullopt;
    for (auto [name, v] : {std::pair{"domain", &domain}, {"queue", &queue}, {"id", &id}})
        if (bad_word(*v)) {
            err = HttpResponse::error(400, name, "must not contain white space");
            return std::nullopt;
        }
    if (reason.find_first_of("\r\n") != std::string::npos) {
        err = HttpResponse::error(400, "reason", "must be one line");
        return std::nullopt;
    }
    if (action == "reload" || action == "status" || action == "reopen-logs") return action;
    if (action == "suppress" || action == "tenant") {  // suppression.md, adaptive.md
        if (args.empty() || args.find_first_of("\r\n") != std::string::npos) {
            err = HttpResponse::error(400, "args", "give the words of the command, one line");
            return std::nullopt;
        }
        return action + " " + args;
    }
    if (action == "flush") return domain.empty() ? "flush" : "flush " + domain;
    if (action == "suspend" || action == "resume") {
        if (domain.empty() == queue.empty()) {
            err = HttpResponse::error(400, "domain", "give either domain or queue");
            return std::nullopt;
        }
        std::string target = queue.empty() ? domain : "rq:" + queue;
        return action + " " + target + (reason.empty() ? "" : " " + reason);
    }
    if (action == "delete" || action == "bounce") {
        if (id.empty() == domain.empty()) {
            err = HttpResponse::error(400, "id", "give either id or domain");
            return std::nullopt;
        }
        return action + " " + (id.empty() ? "@" + domain : id);
    }
    err = HttpResponse::error(404, "", "no such admin action: " + action);
    return std::nullopt;
}

// Control replies start with "ok" or "error"; the rest is the text.
HttpResponse from_control(const std::string& reply) {
    bool ok = reply.rfind("ok", 0) == 0;
    std::string text = reply.substr(std::min(reply.size(), size_t(ok ? 2 : 5)));
    while (!text.empty() && (text[0] == ':' || text[0] == ' ')) text.erase(0, 1);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (ok)
        return HttpResponse::json(200, JsonObject().boolean("ok", true).str("result", text).done());
    return HttpResponse::error(409, "", text);
}

}  // namespace

void api_admin(const ApiEnv& env, const std::string& action, const HttpRequest& req,
               HttpRespond respond) {
    if (!env.outbound) return respond(HttpResponse::error(503, "", "delivery is not running"));
    LoopInbox* inbox = env.inbox;
    auto answer = std::make_shared<HttpRespond>(std::move(respond));
    if (action == "queue" || action == "adaptive") {
        if (req.method != "GET" && req.method != "HEAD")
            return (*answer)(HttpResponse::error(405, "", "use GET"));
        bool adaptive = action == "adaptive";
        env.outbound->inspect([inbox, answer, adaptive](const QueueManager* qm) {
            std::string body = !qm ? "" : adaptive ? qm->adaptive_json() : qm->summary_json();
            inbox->post([answer, body = std::move(body)] {
                (*answer)(body.empty() ? HttpResponse::error(503, "", "kasi is shutting down")
                                       : HttpResponse::json(200, body));
            });
        });
        return;
    }
    if ((action == "status") != (req.method == "GET" || req.method == "HEAD"))
        return (*answer)(HttpResponse::error(405, "", action == "status" ? "use GET" : "use POST"));
    HttpResponse err;
    auto line = control_line(action, req, env.http->max_body_bytes, err);
    if (!line) return (*answer)(std::move(err));
    log::notice("http: admin {} by {}", *line, env.who);
    env.outbound->command(*line, [inbox, answer](std::string reply) {
        inbox->post([answer, reply = std::move(reply)] { (*answer)(from_control(reply)); });
    });
}

}  // namespace kasi
