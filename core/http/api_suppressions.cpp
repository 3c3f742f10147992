// The suppression list in bulk over the admin API (docs/http-api.md, docs/suppression.md):
//
//   POST /api/v1/admin/suppressions/import      a CSV body (suppression_csv.h)
//        -> 200 {"ok": true, "rows": N, "imported": N, "skipped": N,
//                "problems": [{"line": L, "message": "..."}, ...]}   (at most 100 listed)
//   GET  /api/v1/admin/suppressions/export[?scope=S|-][&reason=R][&after=C][&limit=N]
//        -> 200 text/csv: the header line and up to `limit` entries in force (10,000 by
//           default, at most 100,000); the header `Kasi-Next` is the cursor of the next
//           page (after=C), 0 when the walk is complete.
//
// Why pages and not one streamed body: an answer here is one HttpResponse, written whole
// (core/http/http_conn.h), so a 10-million-entry export (about 700 MB of CSV) would be held
// in memory at once. A page of 100,000 is about 7 MB; `kasictl suppress export` walks the
// pages. The request body is read whole by the HTTP server too, so an import is at most
// http.ini's max_body_bytes (16 MiB by default); kasictl cuts larger files into pieces.
//
// Both run on the thread pool, never on the worker loop. An import is parsed and added in
// slices of 10,000 entries, one work item each, so that it holds a pool thread for one
// slice (and its fdatasync) at a time; the 200 means every imported entry is on disk.
// A store failure part way answers 503 with the count already stored: the rows before it
// are durable, and importing the file again is harmless (adds are idempotent).
#include <uv.h>

#include <fmt/format.h>

#include "core/http/api.h"
#include "core/log/log.h"
#include "core/suppression/suppression_csv.h"
#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t import_slice = 10000;       // entries per work item (and per add())
constexpr size_t feed_piece = 64 * 1024;     // body bytes handed to the reader at a time
constexpr size_t max_problems_listed = 100;  // in the answer; all are counted
constexpr size_t export_default_limit = 10000;
constexpr size_t export_max_limit = 100000;

bool csv_body(const HttpRequest& req) {
    const std::string* ct = req.header("content-type");
    if (!ct) return true;
    std::string type = to_lower(trim(std::string_view(*ct).substr(0, ct->find(';'))));
    return type == "text/csv" || type == "application/csv" || type == "text/plain";
}

struct Import {
    uv_work_t req{};
    SuppressionService* svc = nullptr;
    std::string body, who;
    size_t pos = 0;
    bool finished = false;  // the reader saw the end of the body
    std::vector<SuppressionEntry> batch;
    std::vector<CsvProblem> problems;
    size_t problem_count = 0, imported = 0, rows = 0;
    std::unique_ptr<SuppressionCsvReader> reader;
    std::string err;
    HttpRespond respond;

    Import(const Import&) = delete;  // the reader's callbacks hold `this`
    Import& operator=(const Import&) = delete;
    Import() {
        reader = std::make_unique<SuppressionCsvReader>(
            [this](SuppressionEntry&& e) { batch.push_back(std::move(e)); },
            [this](CsvProblem&& p) {
                ++problem_count;
                if (problems.size() < max_problems_listed) problems.push_back(std::move(p));
            });
    }

    // On a pool thread: reads until a slice is full or the body is done, then adds it.
    void slice() {
        while (batch.size() < import_slice && pos < body.size()) {
            size_t n = std::min(feed_piece, body.size() - pos);
            reader->feed(std::string_view(body).substr(pos, n));
            pos += n;
        }
        if (pos == body.size() && !finished) {
            reader->finish();
            finished = true;
            rows = reader->rows();
        }
        if (batch.empty()) return;
        if (!svc->store().add(batch, err)) return;
        imported += batch.size();
        batch.clear();
    }

    bool done() const { return !err.empty() || (finished && batch.empty()); }

    HttpResponse answer() const {
        if (!err.empty())
            return HttpResponse::error(
                503, "", fmt::format("stopped after {} entries were stored: {}", imported, err));
        std::string list = "[";
        for (const auto& p : problems) {
            if (list.size() > 1) list += ',';
            list += JsonObject().num("line", int64_t(p.line)).str("message", p.message).done();
        }
        list += ']';
        JsonObject o;
        o.boolean("ok", true).num("rows", int64_t(rows)).num("imported", int64_t(imported));
        o.num("skipped", int64_t(problem_count)).raw("problems", list);
        return HttpResponse::json(200, o.done());
    }
};

int queue_slice(uv_loop_t* loop, Import* job);

// On the loop: the next slice, or the answer.
void after_slice(uv_work_t* r, int status) {
    std::unique_ptr<Import> job(static_cast<Import*>(r->data));
    if (status != 0 && job->err.empty()) job->err = uv_strerror(status);
    if (!job->done()) {
        int rc = queue_slice(r->loop, job.get());
        if (rc == 0) {
            (void)job.release();  // libuv owns it until after_slice
            return;
        }
        job->err = uv_strerror(rc);
    }
    log::notice("http: suppressions import by {}: {} of {} rows imported, {} skipped{}", job->who,
                job->imported, job->rows, job->problem_count,
                job->err.empty() ? "" : ", stopped: " + job->err);
    job->respond(job->answer());
}

int queue_slice(uv_loop_t* loop, Import* job) {
    job->req.data = job;
    return uv_queue_work(
        loop, &job->req, [](uv_work_t* r) { static_cast<Import*>(r->data)->slice(); }, after_slice);
}

void import(const ApiEnv& env, HttpRequest& req, HttpRespond respond) {
    if (!csv_body(req)) return respond(HttpResponse::error(415, "", "send the list as text/csv"));
    auto job = std::make_unique<Import>();
    job->svc = env.suppressions;
    job->body = std::move(req.body);
    job->who = env.who;
    job->respond = std::move(respond);
    if (int rc = queue_slice(env.loop, job.get()); rc != 0)
        return job->respond(HttpResponse::error(503, "", uv_strerror(rc)));
    (void)job.release();  // libuv owns it until after_slice
}

// The query's page of entries in force, as CSV.
struct Export {
    uv_work_t req{};
    SuppressionService* svc = nullptr;
    SuppressionQuery q;
    size_t limit = export_default_limit;
    std::string csv;
    size_t count = 0;
    uint64_t next = 0;
    HttpRespond respond;

    void run() {  // on a pool thread
        csv.assign(suppression_csv_header);
        q.now = now_ms() / 1000;
        do {
            q.limit = std::min<size_t>(limit - count, 10000);
            SuppressionPage page = svc->store().list(q);
            for (const auto& e : page.entries) csv += suppression_csv_row(e);
            count += page.entries.size();
            q.after = page.next;
        } while (q.after != 0 && count < limit);
        next = q.after;
    }
};

bool export_query(const HttpRequest& req, Export& x, HttpResponse& err) {
    std::string scope = req.query_param("scope"), reason = req.query_param("reason");
    std::string after = req.query_param("after"), limit = req.query_param("limit");
    if (!scope.empty() && scope != "*") x.q.scope = scope == "-" ? std::string() : scope;
    if (!reason.empty()) {
        x.q.reason = parse_reason(reason);
        if (!x.q.reason) {
            err = HttpResponse::error(400, "reason", "unknown reason '" + reason + "'");
            return false;
        }
    }
    unsigned long long n = 0;
    if (!after.empty()) {
        if (!parse_u64(after, n)) {
            err = HttpResponse::error(400, "after", "the Kasi-Next of the previous page");
            return false;
        }
        x.q.after = n;
    }
    if (!limit.empty()) {
        if (!parse_u64(limit, n) || n == 0 || n > export_max_limit) {
            err = HttpResponse::error(400, "limit", fmt::format("1 to {}", export_max_limit));
            return false;
        }
        x.limit = size_t(n);
    }
    return true;
}

void export_page(const ApiEnv& env, const HttpRequest& req, HttpRespond respond) {
    auto x = std::make_unique<Export>();
    HttpResponse err;
    if (!export_query(req, *x, err)) return respond(std::move(err));
    x->svc = env.suppressions;
    x->respond = std::move(respond);
    x->req.data = x.get();
    int rc = uv_queue_work(
        env.loop, &x->req, [](uv_work_t* r) { static_cast<Export*>(r->data)->run(); },
        [](uv_work_t* r, int) {
            std::unique_ptr<Export> x(static_cast<Export*>(r->data));
            HttpResponse resp;
            resp.content_type = "text/csv; charset=utf-8";
            resp.body = std::move(x->csv);
            resp.headers.emplace_back("Kasi-Next", std::to_string(x->next));
            resp.headers.emplace_back("Kasi-Count", std::to_string(x->count));
            x->respond(std::move(resp));
        });
    if (rc != 0) return x->respond(HttpResponse::error(503, "", uv_strerror(rc)));
    (void)x.release();  // libuv owns it until the after-work callback
}

}  // namespace

void api_suppressions(const ApiEnv& env, const std::string& action, HttpRequest req,
                      HttpRespond respond) {
    if (!env.suppressions)
        return respond(
            HttpResponse::error(503, "", "the suppression list is off (suppression.ini)"));
    if (action == "import") {
        if (req.method != "POST") return respond(HttpResponse::error(405, "", "use POST"));
        return import(env, req, std::move(respond));
    }
    if (action == "export") {
        if (req.method != "GET" && req.method != "HEAD")
            return respond(HttpResponse::error(405, "", "use GET"));
        return export_page(env, req, std::move(respond));
    }
    respond(HttpResponse::error(404, "", "no such endpoint: " + req.path));
}

}  // namespace kasi
