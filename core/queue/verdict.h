// Where a verdict is made: step 1 of the outcome stage (outcome.h). For one attempt, each
// recipient's reply (or the failure that came before any reply) becomes a Judgement: the
// verdict its code gives (2xx delivered, 5xx bounce, anything else defer) and what the
// outcome means, by the rules of core/classify/classifier.h. A failure before any reply
// arrives as Kasi's own reply with a text saying what happened (smtp_client.cpp,
// ready_queue.cpp: "greeting: 554 5.7.1 ...", "timeout waiting for the server (...)",
// "TLS error: ...", "connection lost: ..."); when the server's own reply is in that text,
// that reply is what is classified (a 554 greeting is a block, not a network error), and a
// timeout is kind timeout wherever it happened. The verdict stays Kasi's (a 421: retried).
//
// Then a classify_response hook may change a judgement (apply_response_answer); the
// outcome stage asks it and applies the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/classify/classification.h"
#include "core/smtp/client/reply_parser.h"

namespace kasi {

class Classifier;
struct Result;
struct ResponseOverride;

// The verdict a reply's code gives: 2xx delivered, 5xx bounce, anything else defer.
Verdict verdict_for(const SmtpReply& r);

// One recipient's judgement after step 1: its verdict, what the outcome means, and what
// the classify_response hook is told besides the reply.
struct Judgement {
    Verdict verdict = Verdict::defer;
    Classification cls;
    OutcomeKind kind = OutcomeKind::reply;  // after reading a failure's text (above)
    std::string command;                    // the command the reply answered, "" if unknown
    int64_t retry_s = 0;                    // defer: the hook's delay (0: the schedule's)
};

// A classify_response answer applied to a judgement: DENY bounces, DENYSOFT[, seconds]
// defers, OK with a ResponseOverride changes what it sets. A reason or class the rules do
// not know is ignored (and logged); a new reason brings its class, hard and scope from the
// rules unless the override sets them; a failure never becomes a delivery.
void apply_response_answer(Judgement& j, const Result& r, const std::optional<ResponseOverride>& o,
                           const Classifier* rules, const std::string& id);

// The judgements of one attempt's `n` recipients, in order: `replies` has one reply per
// recipient or one for all, `commands` the command each answered ("" or missing: not
// known); `kind` says what failed when no transaction ran. Without rules (`rules` null:
// unit tests) only the provider is named. Recipients that share a reply (a transaction's
// "." reply, a site that is down) are classified once.
std::vector<Judgement> judge(const Classifier* rules, size_t n,
                             const std::vector<SmtpReply>& replies, OutcomeKind kind,
                             const std::vector<std::string_view>& commands,
                             std::string_view mx_host, std::string_view domain);

// A failure Kasi decides itself (expiry, an operator's bounce, a hook's drop): kind local.
Classification classify_local(const Classifier* rules, const SmtpReply& r, std::string_view mx_host,
                              std::string_view domain);

}  // namespace kasi
