// Every JSON request body of the HTTP API, read by the same code the API uses:
//   POST /api/v1/send         the bounded in-situ parse (core/http/json_parse.h,
//                             parse_json_insitu, as api_send.cpp), then prepare_message
//                             (core/http/send_request.h)
//   POST /api/v1/send/batch   the same parse, then prepare_message on each "messages" item
//   POST /api/v1/admin/...    the bounded copying parse (parse_json, as api_admin.cpp) and
//                             the string fields it reads
// Properties: a refusal of the parse has a message; a refusal of a message has a 4xx status
// and a message; an accepted message has recipients, addresses without CR/LF/NUL, and a
// body whose every LF ends a CRLF; the in-situ text keeps its size.
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/http/http_config.h"
#include "core/http/json_parse.h"
#include "core/http/send_request.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace kasi;

void check_prepared(const rapidjson::Value& v, const SendContext& ctx) {
    PreparedMessage pm;
    SendError err;
    if (!prepare_message(v, ctx, pm, err)) {
        FUZZ_CHECK(err.status >= 400 && err.status < 500);
        FUZZ_CHECK(!err.message.empty());
        return;
    }
    FUZZ_CHECK(!pm.txns.empty());
    for (const auto& t : pm.txns) {
        FUZZ_CHECK(!t->rcpts.empty());
        FUZZ_CHECK(fuzz::one_line(t->mail_from.str()));
        for (const auto& r : t->rcpts) FUZZ_CHECK(fuzz::one_line(r.str()));
        for (size_t i = 0; i < t->body.size(); ++i)
            if (t->body[i] == '\n') FUZZ_CHECK(i > 0 && t->body[i - 1] == '\r');
        FUZZ_CHECK(t->body.size() <= ctx.max_message_bytes);
    }
}

void send(const std::string& body, const SendContext& ctx, bool batch) {
    std::string copy = body;  // parsed in situ, like SendJob's body_
    rapidjson::Document doc;
    std::string err;
    bool ok = parse_json_insitu(doc, copy, JsonLimits{}, err);
    FUZZ_CHECK(copy.size() == body.size());
    if (!ok) {
        FUZZ_CHECK(!err.empty() && doc.IsNull());
        return;
    }
    if (!batch) return check_prepared(doc, ctx);
    if (!doc.IsObject() || !doc.HasMember("messages") || !doc["messages"].IsArray()) return;
    const auto& list = doc["messages"];
    if (list.Size() > ctx.http->max_batch_messages) return;
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) check_prepared(list[i], ctx);
}

void admin(const std::string& body) {
    rapidjson::Document doc;
    std::string err;
    if (!parse_json(doc, body, JsonLimits{}, err)) {
        FUZZ_CHECK(!err.empty());
        return;
    }
    if (!doc.IsObject()) return;
    for (const char* f : {"domain", "queue", "id", "reason"})
        if (doc.HasMember(f) && doc[f].IsString())
            (void)std::string(doc[f].GetString(), doc[f].GetStringLength());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const HttpConfig hc;
    SendContext ctx{&hc, "mx.example", "192.0.2.1", false, 1 << 20};
    std::string body(reinterpret_cast<const char*>(data), size);
    send(body, ctx, false);
    send(body, ctx, true);
    admin(body);
    return 0;
}
