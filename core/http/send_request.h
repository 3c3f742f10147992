// The JSON of POST /api/v1/send (and of each element of /api/v1/send/batch's "messages"),
// read and validated into the transactions to spool. Every refusal names the field
// ("to[2].email", "attachments[0].content", "headers.X-Foo") and nothing is spooled for a
// refused message. docs/http-api.md is the reference for the fields.
#pragma once

#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "core/smtp/server/transaction.h"

namespace kasi {

struct HttpConfig;

struct SendError {
    int status = 400;
    std::string field, message;
};

// One transaction per spool record: one for the message, or one per recipient when
// recipients carry their own substitutions. `rcpt_ids` pairs each recipient with its id.
struct PreparedMessage {
    std::vector<std::unique_ptr<Transaction>> txns;
};

struct SendContext {
    const HttpConfig* http = nullptr;
    std::string me;       // Message-ID domain, Received "by"
    std::string peer_ip;  // Received "from"
    bool tls = false;
    size_t max_message_bytes = 0;
};

// False with `err` when the message is refused.
bool prepare_message(const rapidjson::Value& v, const SendContext& ctx, PreparedMessage& out,
                     SendError& err);

}  // namespace kasi
