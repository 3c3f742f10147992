// The spool's messages over the admin API (what `kasictl list` and `kasictl show` print):
//   GET /api/v1/admin/messages?limit=N       the first N queued messages (default 100) and
//                                            the total count
//   GET /api/v1/admin/messages/ID[?body=1]   one message: envelope, per-recipient state,
//                                            notes, history (and its bytes)
// The spool is read on libuv's thread pool (it reads segment files), streaming, so a queue
// of a million messages is never held at once; the answer comes back on the loop.
#include <fmt/format.h>

#include "core/http/api.h"
#include "core/server/server_config.h"
#include "core/spool/spool_reader.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

struct SpoolQuery {
    uv_work_t req{};
    std::string dir, id;  // id empty: the list
    size_t limit = 100;
    bool body = false;
    HttpRespond respond;
    HttpResponse answer;
};

std::string list_item(const SpooledMessage& m) {
    JsonObject o;
    o.str("id", m.env.id).num("received_ms", m.env.received_ms).str("sender", m.env.mail_from);
    o.num("recipients", int64_t(m.env.rcpts.size())).num("size", int64_t(m.body_size));
    o.num("attempts", m.state.attempts);
    return o.done();
}

std::string details(const std::string& dir, const SpooledMessage& m, bool with_body) {
    const auto& e = m.env;
    JsonObject o;
    o.str("id", e.id).num("received_ms", e.received_ms).str("sender", e.mail_from);
    o.str("client_ip", e.client_ip).str("helo", e.helo).boolean("tls", e.tls);
    o.boolean("relaying", e.relaying).str("auth_user", e.auth_user);
    o.str("tenant", e.tenant).str("campaign", e.campaign).num("size", int64_t(m.body_size));
    o.num("attempts", m.state.attempts).num("next_due_ms", m.state.next_due_ms);
    std::string rc = "[";
    for (size_t i = 0; i < e.rcpts.size(); ++i) {
        JsonObject r;
        r.str("address", e.rcpts[i]);
        if (i < m.state.rcpts.size()) {
            r.str("status", rcpt_status_name(m.state.rcpts[i].status));
            r.str("last_reply", m.state.rcpts[i].last_reply);
        }
        rc += (i ? "," : "") + r.done();
    }
    o.raw("recipients", rc + "]");
    JsonObject notes;
    for (const auto& [k, v] : e.notes) notes.str(k, v);
    o.raw("notes", notes.done());
    std::string hist = "[";
    for (const auto& h : m.state.history) {
        if (hist.size() > 1) hist += ',';
        json_escape(hist, h);
    }
    o.raw("history", hist + "]");
    if (with_body) {
        std::string b, err;
        if (read_message_body(dir, m, b, err))
            o.str("body", b);  // invalid UTF-8 bytes become U+FFFD in JSON
        else
            o.str("body_error", err);
    }
    return o.done();
}

void run_query(SpoolQuery& q) {
    SpoolSnapshot info;
    std::string err, items = "[", found;
    size_t count = 0;
    bool ok = stream_spool(q.dir, info, err, false, [&](SpooledMessage& m) {
        if (m.done) return;
        ++count;
        if (!q.id.empty()) {
            if (found.empty() && m.env.id == q.id) found = details(q.dir, m, q.body);
        } else if (count <= q.limit) {
            items += (count > 1 ? "," : "") + list_item(m);
        }
    });
    if (!ok) {
        q.answer = HttpResponse::error(500, "", "reading the spool: " + err);
    } else if (!q.id.empty()) {
        q.answer = found.empty() ? HttpResponse::error(404, "id", "no queued message " + q.id)
                                 : HttpResponse::json(200, found);
    } else {
        JsonObject o;
        o.num("count", int64_t(count)).raw("messages", items + "]");
        q.answer = HttpResponse::json(200, o.done());
    }
}

}  // namespace

void api_messages(const ApiEnv& env, const std::string& id, const HttpRequest& req,
                  HttpRespond respond) {
    auto q = std::make_unique<SpoolQuery>();
    q->dir = env.cfg->settings.queue_dir;
    q->id = id;
    q->body = req.query_param("body") == "1";
    unsigned long long limit = 100;
    std::string l = req.query_param("limit");
    if (!l.empty() && (!parse_u64(l, limit) || limit == 0 || limit > 100000))
        return respond(HttpResponse::error(400, "limit", "must be 1 to 100000"));
    q->limit = size_t(limit);
    q->respond = std::move(respond);
    q->req.data = q.get();
    int rc = uv_queue_work(
        env.loop, &q->req, [](uv_work_t* w) { run_query(*static_cast<SpoolQuery*>(w->data)); },
        [](uv_work_t* w, int) {
            std::unique_ptr<SpoolQuery> q(static_cast<SpoolQuery*>(w->data));
            q->respond(std::move(q->answer));
        });
    if (rc != 0) {
        q->respond(HttpResponse::error(503, "", uv_strerror(rc)));
        return;
    }
    (void)q.release();  // libuv owns it until the after-work callback
}

}  // namespace kasi
