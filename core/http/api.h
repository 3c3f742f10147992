// The HTTP API's routes, run on the worker loop of the connection:
//   GET  /health                    liveness and readiness (api_health.cpp)
//   GET  /metrics                   Prometheus text format (core/metrics)
//   POST /api/v1/send               one message (api_send.cpp)
//   POST /api/v1/send/batch         many messages, one result each
//   GET  /api/v1/admin/status       the running config generation and the last reload
//   GET  /api/v1/admin/queue        the delivery summary (JSON)
//   GET  /api/v1/admin/adaptive     the automation rules' actions in force (JSON)
//   GET  /api/v1/admin/messages[/ID] the spool's messages, one message (api_messages.cpp)
//   POST /api/v1/admin/reload | flush | suspend | resume | delete | bounce   (api_admin.cpp)
//   POST /api/v1/admin/suppressions/import  a CSV body    (api_suppressions.cpp)
//   GET  /api/v1/admin/suppressions/export  CSV, a page at a time
//   GET  /api/v1/admin/reputation   the reputation matrix's cells (api_reputation.cpp)
//   POST /unsubscribe/TOKEN         RFC 8058 one-click unsubscribe
// Authorisation (http.ini [auth]): a bearer token's scopes, or a trusted network; the
// public paths need neither. Every answer is JSON except /metrics.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "core/http/http_request.h"
#include "core/http/http_response.h"
#include "core/util/ip.h"

namespace kasi {

struct ServerConfig;
struct HttpConfig;
class Spool;
class Outbound;
class LoopInbox;
class SessionHost;

class Submission;

// What the API keeps for the length of one HTTP connection: its local SMTP session, so that
// one keep-alive connection is one SMTP session (connect hooks once, the limit plugin's
// connection counts, one disconnect line), as an SMTP client's connection would be. The
// session is told QUIT when the connection (and any request still running) is done.
struct ApiConnState {
    std::shared_ptr<Submission> submission;
    ~ApiConnState();
};

// What the handlers may use: the worker loop they run on and the shared services.
class SuppressionService;

struct ApiEnv {
    uv_loop_t* loop = nullptr;
    LoopInbox* inbox = nullptr;  // this loop's: answers from other threads come back here
    std::shared_ptr<const ServerConfig> cfg;
    std::shared_ptr<const HttpConfig> http;  // never null here
    Spool* spool = nullptr;
    Outbound* outbound = nullptr;
    SuppressionService* suppressions = nullptr;  // null: no list
    SessionHost* sessions = nullptr;  // the worker: API mail goes through local SMTP sessions
    std::shared_ptr<ApiConnState> conn_state;  // null in tools and tests without a connection
    IpAddr peer;
    bool tls = false;
    std::string who;  // the token's name or "trusted:IP", for logs
};

void route_request(ApiEnv env, HttpRequest req, HttpRespond respond);

// The route handlers (one file each).
void api_health(const ApiEnv& env, HttpRespond respond);
void api_metrics(const ApiEnv& env, HttpRespond respond);
void api_admin(const ApiEnv& env, const std::string& action, const HttpRequest& req,
               HttpRespond respond);
void api_suppressions(const ApiEnv& env, const std::string& action, HttpRequest req,
                      HttpRespond respond);  // import | export
void api_send(const ApiEnv& env, HttpRequest req, HttpRespond respond, bool batch);
void api_messages(const ApiEnv& env, const std::string& id, const HttpRequest& req,
                  HttpRespond respond);  // id empty: the list
void api_reports(const ApiEnv& env, const HttpRequest& req, HttpRespond respond);
void api_reputation(const ApiEnv& env, const HttpRequest& req, HttpRespond respond);
void api_unsubscribe(const ApiEnv& env, const std::string& token, const HttpRequest& req,
                     HttpRespond respond);

}  // namespace kasi
