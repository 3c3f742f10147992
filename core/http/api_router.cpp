#include <fmt/format.h>

#include "core/http/api.h"
#include "core/http/http_config.h"
#include "core/log/log.h"
#include "core/server/server_config.h"

namespace kasi {

namespace {

struct Route {
    const char* method;
    std::string_view prefix;  // a path, or a prefix ending in '/'
    unsigned scope;           // 0: no authorisation needed
};

constexpr Route routes[] = {
    {"GET", "/health", scope_metrics},
    {"GET", "/metrics", scope_metrics},
    {"POST", "/api/v1/send", scope_send},
    {"POST", "/api/v1/send/batch", scope_send},
    {"POST", "/api/v1/reports", scope_send},
    {"GET", "/api/v1/admin/status", scope_admin},
    {"GET", "/api/v1/admin/queue", scope_admin},
    {"GET", "/api/v1/admin/messages", scope_admin},
    {"GET", "/api/v1/admin/messages/", scope_admin},
    {"GET", "/api/v1/admin/suppressions/export", scope_admin},
    {"GET", "/api/v1/admin/reputation", scope_admin},
    {"GET", "/api/v1/admin/adaptive", scope_admin},
    {"POST", "/api/v1/admin/", scope_admin},
    {"POST", "/unsubscribe/", 0},  // the token in the path is the authorisation
};

const Route* find_route(const HttpRequest& req, bool& wrong_method) {
    wrong_method = false;
    std::string method = req.method == "HEAD" ? std::string("GET") : req.method;
    for (const auto& r : routes) {
        bool match = r.prefix.back() == '/'
                         ? req.path.starts_with(r.prefix) && req.path.size() > r.prefix.size()
                         : req.path == r.prefix;
        if (!match) continue;
        if (method == r.method) return &r;
        wrong_method = true;
    }
    return nullptr;
}

std::string bearer_of(const HttpRequest& req) {
    const std::string* h = req.header("authorization");
    if (!h || h->size() < 7 || strncasecmp(h->c_str(), "bearer ", 7) != 0) return {};
    return h->substr(7);
}

bool is_public(const HttpConfig& c, const std::string& path) {
    for (const auto& p : c.public_paths)
        if (p == path) return true;
    return false;
}

}  // namespace

void route_request(ApiEnv env, HttpRequest req, HttpRespond respond) {
    const HttpConfig& hc = *env.http;
    bool wrong_method = false;
    const Route* r = find_route(req, wrong_method);
    if (!r) {
        if (wrong_method) {
            auto resp = HttpResponse::error(
                405, "", fmt::format("{} is not allowed on {}", req.method, req.path));
            return respond(std::move(resp));
        }
        return respond(HttpResponse::error(404, "", "no such endpoint: " + req.path));
    }
    if (r->scope && !is_public(hc, req.path)) {
        std::string bearer = bearer_of(req);
        unsigned have = hc.scopes_for(env.peer, bearer, &env.who);
        if (r->scope == scope_metrics) have |= (have & scope_admin) ? unsigned(scope_metrics) : 0u;
        if (!(have & r->scope)) {
            log::info("http: {} {} from {} refused: {}", req.method, req.path, env.peer.str(),
                      bearer.empty() ? "no token and not a trusted network" : "bad token or scope");
            auto resp = bearer.empty() && have == 0
                            ? HttpResponse::error(401, "", "authorisation required (Bearer token)")
                            : HttpResponse::error(403, "", "this token may not use " + req.path);
            if (resp.status == 401) resp.headers.emplace_back("WWW-Authenticate", "Bearer");
            return respond(std::move(resp));
        }
    }
    std::string_view p = req.path;
    if (p == "/health") return api_health(env, std::move(respond));
    if (p == "/metrics") return api_metrics(env, std::move(respond));
    if (p == "/api/v1/send") return api_send(env, std::move(req), std::move(respond), false);
    if (p == "/api/v1/send/batch") return api_send(env, std::move(req), std::move(respond), true);
    if (p == "/api/v1/reports") return api_reports(env, req, std::move(respond));
    if (p == "/api/v1/admin/messages") return api_messages(env, "", req, std::move(respond));
    if (p.starts_with("/api/v1/admin/messages/"))
        return api_messages(env, std::string(p.substr(23)), req, std::move(respond));
    if (p == "/api/v1/admin/reputation") return api_reputation(env, req, std::move(respond));
    if (p.starts_with("/api/v1/admin/suppressions/"))
        return api_suppressions(env, std::string(p.substr(27)), std::move(req), std::move(respond));
    if (p.starts_with("/api/v1/admin/"))
        return api_admin(env, std::string(p.substr(14)), req, std::move(respond));
    return api_unsubscribe(env, std::string(p.substr(13)), req, std::move(respond));
}

}  // namespace kasi
