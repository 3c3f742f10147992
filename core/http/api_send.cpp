// POST /api/v1/send and /api/v1/send/batch: JSON in, messages spooled, one id per recipient
// out. Each message goes through a local SMTP session (core/http/submission.h), so it meets
// the same hooks as SMTP mail (connect ... mail, rcpt, data_post, queue_outbound ... queue_ok),
// then the same sealers, spool and queues. A recipient a hook refuses gets its own error (as
// an SMTP client gets a 5xx to one RCPT) and the others are queued; a message none of whose
// recipients is queued is an error. Anything reported as queued is durable in the spool,
// exactly like SMTP's 250 after DATA.
//
// Memory and concurrency: the request body is parsed in place (RapidJSON's in-situ mode:
// strings point into the body, no second copy of a large batch), iteratively and with a
// depth limit (core/http/json_parse.h). A batch is spread over up to
// http.ini batch_sessions local sessions; each takes the next message, builds it, hands it in
// and takes the next once it is queued, so at most that many built messages exist at once
// and their spool writes share group commits. A refused or invalid message is never partly
// queued by the API itself. If the client goes away before the answer, what was accepted is
// still spooled (and may be sent again by a retrying client: at least once, never lost).
#include <rapidjson/document.h>

#include <fmt/format.h>

#include "core/http/api.h"
#include "core/http/http_config.h"
#include "core/http/json_parse.h"
#include "core/http/send_request.h"
#include "core/http/submission.h"
#include "core/log/log.h"
#include "core/server/server_config.h"
#include "core/util/json.h"

namespace kasi {

namespace {

// One transaction of a message (a message is one, or one per recipient with substitutions).
struct Part {
    std::string uuid;
    std::vector<std::string> rcpts;
    SubmitResult res;
};

struct MessageResult {
    bool prepared = false;
    SendError err;
    std::vector<Part> parts;
    size_t pending = 0;
    bool queued() const {
        for (const auto& p : parts)
            if (p.res.queued) return true;
        return false;
    }
};

// The HTTP status for an SMTP refusal: 552 (too big) 413, other 5xx 422, 4xx 503.
int status_for(const SmtpReply& r) {
    if (r.code == 552 || r.enhanced == "5.3.4") return 413;
    return r.cls() == 5 ? 422 : 503;
}

std::string smtp_text(const SmtpReply& r) {
    return fmt::format("{}{}{} {}", r.code, r.enhanced.empty() ? "" : " ", r.enhanced, r.text());
}

std::string error_json(int status, std::string_view field, std::string_view message,
                       const SmtpReply* smtp) {
    JsonObject e;
    e.num("status", status);
    if (!field.empty()) e.str("field", field);
    e.str("message", message);
    if (smtp) e.str("smtp", smtp_text(*smtp));
    return e.done();
}

class SendJob : public std::enable_shared_from_this<SendJob> {
  public:
    SendJob(ApiEnv env, HttpRespond respond, bool batch, std::string body)
        : env_(std::move(env)),
          respond_(std::move(respond)),
          batch_(batch),
          body_(std::move(body)) {}

    void start();

  private:
    struct Lane {
        std::shared_ptr<Submission> sub;
        bool busy = false;  // a message of this lane is in flight
        bool pulling = false, quit = false;
    };

    void pull(size_t lane);
    bool take_next(size_t lane);
    void part_done(size_t lane, size_t msg, size_t part, SubmitResult r);
    void message_done(size_t lane);
    void finish();
    std::string result_json(size_t index, const MessageResult& m) const;
    void reply_error(int status, std::string field, std::string message) {
        respond_(HttpResponse::error(status, field, message));
    }

    ApiEnv env_;
    HttpRespond respond_;
    bool batch_;
    std::string body_;  // parsed in situ: the document points into it
    rapidjson::Document doc_;
    const rapidjson::Value* list_ = nullptr;
    SendContext ctx_;
    std::vector<MessageResult> results_;
    std::vector<Lane> lanes_;
    size_t next_ = 0;  // the next message to take
    size_t done_ = 0;  // messages finished (refused by validation, queued or refused)
    bool finished_ = false;
};

void SendJob::start() {
    const HttpConfig& hc = *env_.http;
    std::string err;
    if (!parse_json_insitu(doc_, body_,
                           JsonLimits{.max_bytes = batch_ ? hc.max_batch_bytes : hc.max_body_bytes},
                           err))
        return reply_error(400, "", err);
    list_ = &doc_;
    if (batch_) {
        if (!doc_.IsObject() || !doc_.HasMember("messages") || !doc_["messages"].IsArray())
            return reply_error(400, "messages", "expected {\"messages\": [ ... ]}");
        list_ = &doc_["messages"];
        if (list_->Size() == 0) return reply_error(400, "messages", "is empty");
        if (list_->Size() > hc.max_batch_messages)
            return reply_error(413, "messages",
                               fmt::format("{} messages exceed the limit of {}", list_->Size(),
                                           hc.max_batch_messages));
    }
    ctx_ = SendContext{&hc, env_.cfg->settings.me, env_.peer.str(), env_.tls, hc.max_body_bytes};
    size_t n = batch_ ? list_->Size() : 1;
    results_.resize(n);
    lanes_.resize(batch_ ? std::min<size_t>(n, std::max<size_t>(1, hc.batch_sessions)) : 1);
    for (size_t i = 0; i < lanes_.size(); ++i) pull(i);
}

// Gives the lane messages until one is in flight or none is left. A message refused by
// validation, or answered at once (the session failed), is followed by the next in this
// loop rather than by recursion.
void SendJob::pull(size_t li) {
    Lane& lane = lanes_[li];
    if (lane.pulling) return;  // a message answered at once: the loop below goes on
    lane.pulling = true;
    while (!lane.busy && next_ < results_.size() && !finished_)
        if (!take_next(li)) return;  // the request was answered (single message refused)
    lane.pulling = false;
    bool kept = !batch_ && env_.conn_state && env_.conn_state->submission == lane.sub;
    if (!lane.busy && next_ >= results_.size() && lane.sub && !lane.quit && !kept) {
        lane.quit = true;
        lane.sub->quit();
    }
    if (done_ == results_.size()) finish();
}

bool SendJob::take_next(size_t li) {
    Lane& lane = lanes_[li];
    size_t i = next_++;
    const rapidjson::Value& v = batch_ ? (*list_)[rapidjson::SizeType(i)] : doc_;
    PreparedMessage pm;
    auto& m = results_[i];
    if (!prepare_message(v, ctx_, pm, m.err)) {
        if (!batch_) {
            finished_ = true;
            reply_error(m.err.status, m.err.field, m.err.message);
            return false;
        }
        ++done_;
        return true;
    }
    m.prepared = true;
    // A single message uses the connection's session while it lasts; batch lanes have
    // their own (and open another when one ends, say after a DENYDISCONNECT).
    if (!batch_ && !lane.sub && env_.conn_state && env_.conn_state->submission &&
        env_.conn_state->submission->usable())
        lane.sub = env_.conn_state->submission;
    if (!lane.sub || !lane.sub->usable()) {
        LocalClient c;
        c.ip = env_.peer;
        c.tls = env_.tls;
        c.who = env_.who;
        c.notes["api.client"] = env_.who;
        lane.sub = Submission::open(*env_.sessions, session_config(env_.cfg), std::move(c));
        if (!batch_ && env_.conn_state) env_.conn_state->submission = lane.sub;
    }
    lane.busy = true;
    m.pending = pm.txns.size();
    m.parts.resize(pm.txns.size());
    for (size_t k = 0; k < pm.txns.size(); ++k) {
        m.parts[k].uuid = pm.txns[k]->uuid;
        for (const auto& r : pm.txns[k]->rcpts) m.parts[k].rcpts.push_back(r.str());
    }
    auto self = shared_from_this();
    auto sub = lane.sub;  // a synchronous answer may end the lane's use of it
    for (size_t k = 0; k < pm.txns.size(); ++k)
        sub->submit(std::move(pm.txns[k]),
                    [self, li, i, k](SubmitResult r) { self->part_done(li, i, k, std::move(r)); });
    return true;
}

void SendJob::part_done(size_t li, size_t msg, size_t part, SubmitResult r) {
    auto& m = results_[msg];
    m.parts[part].res = std::move(r);
    if (--m.pending > 0) return;
    ++done_;
    lanes_[li].busy = false;
    pull(li);
}

std::string SendJob::result_json(size_t index, const MessageResult& m) const {
    JsonObject o;
    if (batch_) o.num("index", int64_t(index));
    if (!m.prepared)
        return o.raw("error", error_json(m.err.status, m.err.field, m.err.message, nullptr)).done();
    const Part* first_queued = nullptr;
    size_t rejected = 0;
    std::string rc = "[";
    for (const auto& p : m.parts) {
        if (p.res.queued && !first_queued) first_queued = &p;
        size_t k = 0;  // the recipient's index among those this transaction queued
        for (size_t j = 0; j < p.rcpts.size(); ++j) {
            JsonObject r;
            r.str("email", p.rcpts[j]);
            const SmtpReply* refusal = j < p.res.rcpt.size() && p.res.rcpt[j]
                                           ? &*p.res.rcpt[j]
                                           : (p.res.queued ? nullptr : &p.res.reply);
            if (refusal) {
                ++rejected;
                r.raw("error", error_json(status_for(*refusal), "", "refused", refusal));
            } else {
                r.str("id", fmt::format("{}/{}", p.uuid, k++));
            }
            rc += (rc.size() > 1 ? "," : "") + r.done();
        }
    }
    if (!first_queued) {
        const Part& p = m.parts.front();
        std::string field = p.res.stage == "from" ? "from" : p.res.stage == "to" ? "to" : "";
        o.raw("error", error_json(status_for(p.res.reply), field,
                                  fmt::format("refused at {}", p.res.stage), &p.res.reply));
    } else {
        o.str("id", first_queued->uuid);
    }
    if (rejected) o.num("rejected", int64_t(rejected));
    o.raw("recipients", rc + "]");
    return o.done();
}

void SendJob::finish() {
    if (finished_) return;
    finished_ = true;
    if (!batch_) {
        const auto& m = results_.front();
        int status = 200;
        if (!m.queued()) status = status_for(m.parts.front().res.reply);
        if (status == 200) {
            size_t queued = 0;
            for (const auto& p : m.parts)
                for (size_t j = 0; p.res.queued && j < p.rcpts.size(); ++j)
                    queued += j >= p.res.rcpt.size() || !p.res.rcpt[j];
            log::info("http: message {} queued for {} recipients by {}", m.parts.front().uuid,
                      queued, env_.who);
        }
        return respond_(HttpResponse::json(status, result_json(0, m)));
    }
    size_t accepted = 0;
    std::string list = "[";
    for (size_t i = 0; i < results_.size(); ++i) {
        accepted += results_[i].prepared && results_[i].queued();
        list += (i ? "," : "") + result_json(i, results_[i]);
    }
    JsonObject o;
    o.num("accepted", int64_t(accepted)).num("rejected", int64_t(results_.size() - accepted));
    o.raw("results", list + "]");
    log::info("http: batch of {} messages, {} accepted, by {}", results_.size(), accepted,
              env_.who);
    respond_(HttpResponse::json(200, o.done()));
}

}  // namespace

ApiConnState::~ApiConnState() {
    if (submission) submission->quit();
}

void api_send(const ApiEnv& env, HttpRequest req, HttpRespond respond, bool batch) {
    // The body is JSON whatever the Content-Type says (curl -d sends a form type).
    if (req.body.empty()) return respond(HttpResponse::error(400, "", "the body is empty"));
    if (!env.spool || !env.sessions)
        return respond(HttpResponse::error(503, "", "the spool is not available"));
    auto job = std::make_shared<SendJob>(env, std::move(respond), batch, std::move(req.body));
    job->start();
}

}  // namespace kasi
