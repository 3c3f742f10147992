// RFC 3464 delivery status notifications for permanent failures and expiry, and
// optional delay warnings (Action: delayed) for mail still being retried:
//   multipart/report; report-type=delivery-status
//     1. text/plain from the template (config/outbound.bounce_message, Haraka's format:
//        header lines, a blank line, the body; {placeholders} filled in)
//     2. message/delivery-status: Reporting-MTA, Arrival-Date, then per recipient
//        Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date
//        and X-Kasi-Classification (what the failure means: docs/bounces.md)
//     3. text/rfc822-headers (the original headers) or message/rfc822 (the whole message)
// The DSN goes to the original envelope sender with a null sender of its own, so it can
// never cause another DSN.
//
// This file is the format: dsn_input() gathers what a message's DSN says, build_dsn()
// writes it. Sending it (spool, seal, queue) is dsn_writer.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/classify/classification.h"
#include "core/queue/queued_message.h"

namespace kasi {

struct DsnRecipient {
    std::string address;
    std::string status;      // "5.1.1"
    std::string remote_mta;  // MX host name, "" when none was reached
    std::string diagnostic;  // "550 5.1.1 No such user" ("" when there was no reply)
    int64_t last_attempt_ms = 0;
    std::optional<Classification> cls;  // what the failure means, when known
};

struct DsnInput {
    std::string me;
    std::string original_sender;
    std::string original_id;
    int64_t arrival_ms = 0;
    std::vector<DsnRecipient> rcpts;
    std::string reason;    // one line: why the message failed
    std::string original;  // headers only, or the whole message
    bool whole_message = false;
    std::string template_text;  // "" = the built-in template
    // A delay warning (RFC 3464 Action: delayed, a 4.x.y Status) instead of a failure:
    // the built-in warning text, and Will-Retry-Until.
    bool delayed = false;
    int64_t retry_until_ms = 0;
};

// What the DSN of a message depends on besides the message (outbound.ini, config/me).
struct DsnOptions {
    std::string me;
    bool include_message = false;  // bounce_include_message: the whole message, not its headers
    int64_t max_age_ms = 0;        // a delay warning's Will-Retry-Until is arrival + max_age
    std::string template_path;     // config/outbound.bounce_message; "" = the built-in text
    // Classifies a recipient's recorded reply when the failure's classification was not
    // kept (the message failed before a restart); null: such recipients go without one.
    std::function<Classification(const std::string& reply)> classify;
};

// What message `m`'s DSN says: its failed recipients (not the deleted ones), each with the
// status, diagnostic and classification of its last reply; or, when `delayed` is given, a delay
// warning for those recipients. `original` is the message as spooled ("" when it could not be
// read). The template file is read each time: small, and an operator's edit applies at once.
DsnInput dsn_input(const QueuedMessage& m, const DsnOptions& o, std::string original,
                   const std::vector<uint32_t>& delayed, int64_t now_ms);

// The DSN message (CRLF line ends) and its Message-ID in `msgid`.
std::string build_dsn(const DsnInput& in, int64_t now_ms, std::string& msgid);

// The status a failed recipient gets: the reply's enhanced code, else one derived from
// the reply code; a temporary code becomes permanent (4.x.y -> 5.x.y) since we give up.
std::string final_status(int code, const std::string& enhanced);

// Header block of a message (up to and including the blank line, or all of it).
std::string_view header_block(std::string_view msg);

}  // namespace kasi
