// GET /api/v1/admin/reputation?source=IP&domain=D&provider=P&tenant=T&rollups=true&limit=N:
// the reputation matrix's cells that match, as JSON (docs/reputation.md). The filters are
// those of core/reputation/reputation_query.h; a filter given empty (`domain=`) names a
// roll-up's wildcard. Read on the worker loop: the matrix has its own lock.
#include "core/http/api.h"
#include "core/queue/outbound.h"
#include "core/reputation/reputation_query.h"
#include "core/reputation/reputation_service.h"

namespace kasi {

void api_reputation(const ApiEnv& env, const HttpRequest& req, HttpRespond respond) {
    if (req.method != "GET" && req.method != "HEAD")
        return respond(HttpResponse::error(405, "", "use GET"));
    ReputationService* rep = env.outbound ? env.outbound->reputation() : nullptr;
    if (!rep)
        return respond(
            HttpResponse::error(404, "", "the reputation matrix is off (reputation.ini)"));
    std::vector<std::pair<std::string, std::string>> kv;
    if (!req.query_pairs(kv))
        return respond(HttpResponse::error(400, "", "a bad percent escape in the query"));
    RepQuery q;
    std::string err;
    if (!parse_rep_query(kv, q, err)) return respond(HttpResponse::error(400, "", err));
    respond(HttpResponse::json(200, rep->json(q.filter, q.limit)));
}

}  // namespace kasi
