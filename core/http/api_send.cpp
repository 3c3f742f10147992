// POST /api/v1/send and /api/v1/send/batch: JSON in, messages spooled, one id per recipient
// out. A 200 means every message reported as accepted is durable in the spool, exactly like
// SMTP's 250 after DATA; the messages then go through the same sealers (List-Unsubscribe,
// VERP, DKIM: core/smtp/seal.h) and the same delivery queues and outbound hooks as SMTP mail.
//
// Memory: the request body is parsed in place (RapidJSON's in-situ mode: strings point into
// the body, no second copy of a large batch); each message is built and handed to the
// sealers and the spool one after the other, so a batch costs its body plus the messages the
// spool has not written yet. Validation of a message is complete before any of its
// transactions is submitted, so a refused message is never partly queued. If the client
// goes away before the answer, what was accepted is still spooled (and may be sent again
// by a retrying client: at least once, never lost).
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <fmt/format.h>

#include "core/http/api.h"
#include "core/http/http_config.h"
#include "core/http/send_request.h"
#include "core/log/log.h"
#include "core/queue/intake.h"
#include "core/server/loop_inbox.h"
#include "core/server/server_config.h"
#include "core/smtp/seal.h"
#include "core/util/json.h"

namespace kasi {

namespace {

struct MessageResult {
    bool prepared = false;
    SendError err;
    std::vector<std::unique_ptr<Transaction>> txns;
    std::vector<std::pair<std::string, std::string>> rcpts;  // (address, id)
    std::vector<std::string> ids;
    size_t pending = 0;
    int spool_errors = 0;
};

class SendJob : public std::enable_shared_from_this<SendJob> {
  public:
    SendJob(ApiEnv env, HttpRespond respond, bool batch, std::string body)
        : env_(std::move(env)),
          respond_(std::move(respond)),
          batch_(batch),
          body_(std::move(body)) {}

    void start();

  private:
    void submit(MessageResult& m);
    void spooled(MessageResult& m, bool ok);
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
    std::vector<MessageResult> results_;
    size_t outstanding_ = 0;
    bool submitting_ = false;
};

void SendJob::start() {
    const HttpConfig& hc = *env_.http;
    doc_.ParseInsitu<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseStopWhenDoneFlag>(
        body_.data());
    if (doc_.HasParseError())
        return reply_error(400, "",
                           fmt::format("malformed JSON at offset {}: {}", doc_.GetErrorOffset(),
                                       rapidjson::GetParseError_En(doc_.GetParseError())));
    const rapidjson::Value* list = &doc_;
    if (batch_) {
        if (!doc_.IsObject() || !doc_.HasMember("messages") || !doc_["messages"].IsArray())
            return reply_error(400, "messages", "expected {\"messages\": [ ... ]}");
        list = &doc_["messages"];
        if (list->Size() == 0) return reply_error(400, "messages", "is empty");
        if (list->Size() > hc.max_batch_messages)
            return reply_error(413, "messages",
                               fmt::format("{} messages exceed the limit of {}", list->Size(),
                                           hc.max_batch_messages));
    }
    SendContext ctx{&hc, env_.cfg->settings.me, env_.peer.str(), env_.tls, hc.max_body_bytes};
    size_t n = batch_ ? list->Size() : 1;
    results_.resize(n);
    // Each message is validated completely, then handed on at once (a sealer or the spool
    // may answer synchronously, so the answer waits until the loop is done), so a batch
    // holds at most its body plus the messages the spool has not written yet.
    submitting_ = true;
    for (size_t i = 0; i < n; ++i) {
        const rapidjson::Value& v = batch_ ? (*list)[rapidjson::SizeType(i)] : doc_;
        PreparedMessage pm;
        auto& m = results_[i];
        if (!prepare_message(v, ctx, pm, m.err)) {
            if (!batch_) return reply_error(m.err.status, m.err.field, m.err.message);
            continue;
        }
        m.prepared = true;
        m.txns = std::move(pm.txns);
        for (const auto& t : m.txns) {
            m.ids.push_back(t->uuid);
            for (size_t k = 0; k < t->rcpts.size(); ++k)
                m.rcpts.emplace_back(t->rcpts[k].str(), fmt::format("{}/{}", t->uuid, k));
        }
        submit(m);
    }
    submitting_ = false;
    if (outstanding_ == 0) finish();
}

void SendJob::submit(MessageResult& m) {
    auto self = shared_from_this();
    for (auto& t : m.txns) {
        ++m.pending;
        ++outstanding_;
        Transaction* txn = t.get();
        MessageResult* mr = &m;
        seal_transaction(
            env_.loop, env_.cfg, [self, txn]() -> Transaction* { return txn; },
            [self, txn, mr] {
                IntakeSource src{self->env_.peer.str(), "",   self->env_.who,
                                 self->env_.tls,        true, true};
                LoopInbox* inbox = self->env_.inbox;
                spool_and_queue(*self->env_.spool, self->env_.outbound, *txn, src,
                                [self, mr, inbox](const SpoolResult& r) {
                                    bool ok = r.err == 0;
                                    inbox->post([self, mr, ok] { self->spooled(*mr, ok); });
                                });
            });
    }
}

void SendJob::spooled(MessageResult& m, bool ok) {
    if (!ok) ++m.spool_errors;
    --m.pending;
    if (--outstanding_ == 0 && !submitting_) finish();
}

std::string SendJob::result_json(size_t index, const MessageResult& m) const {
    JsonObject o;
    if (batch_) o.num("index", int64_t(index));
    if (!m.prepared || m.spool_errors) {
        JsonObject e;
        if (m.prepared) {
            e.num("status", 503)
                .str("message", fmt::format("{} of {} spool writes failed; the "
                                            "others were queued",
                                            m.spool_errors, m.txns.size()));
        } else {
            e.num("status", m.err.status);
            if (!m.err.field.empty()) e.str("field", m.err.field);
            e.str("message", m.err.message);
        }
        o.raw("error", e.done());
        if (!m.prepared) return o.done();
    }
    o.str("id", m.ids.front());
    std::string rc = "[";
    for (const auto& [addr, id] : m.rcpts)
        rc += (rc.size() > 1 ? "," : "") + JsonObject().str("email", addr).str("id", id).done();
    o.raw("recipients", rc + "]");
    return o.done();
}

void SendJob::finish() {
    if (!batch_) {
        const auto& m = results_.front();
        int status = m.spool_errors ? 503 : 200;
        if (status == 200)
            log::info("http: message {} queued for {} recipients by {}", m.ids.front(),
                      m.rcpts.size(), env_.who);
        return respond_(HttpResponse::json(status, result_json(0, m)));
    }
    size_t accepted = 0;
    std::string list = "[";
    for (size_t i = 0; i < results_.size(); ++i) {
        accepted += results_[i].prepared && !results_[i].spool_errors;
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

void api_send(const ApiEnv& env, HttpRequest req, HttpRespond respond, bool batch) {
    // The body is JSON whatever the Content-Type says (curl -d sends a form type).
    if (req.body.empty()) return respond(HttpResponse::error(400, "", "the body is empty"));
    if (!env.spool) return respond(HttpResponse::error(503, "", "the spool is not available"));
    auto job = std::make_shared<SendJob>(env, std::move(respond), batch, std::move(req.body));
    job->start();
}

}  // namespace kasi
