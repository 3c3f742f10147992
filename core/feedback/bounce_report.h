// What a bounce parser says about a message that came back: whether it is a bounce at all,
// and per recipient what happened, in the words of the report (status, reply code,
// diagnostic, remote MTA) and in Kasi's taxonomy (the same Classification an outbound
// reply gets, docs/bounces.md). Also what identifies the original message, for matching
// the report to what Kasi sent (Message-ID, Kasi's own headers, the original sender).
#pragma once

#include <string>
#include <vector>

#include "core/classify/classification.h"

namespace kasi {

struct BouncedRecipient {
    std::string recipient;           // Final-Recipient (or the address the text names)
    std::string original_recipient;  // Original-Recipient, when given
    std::string action;              // failed, delayed, delivered, relayed, expanded
    std::string status;              // x.y.z as reported (may be empty)
    int reply_code = 0;              // from the diagnostic, 0 if none
    std::string diagnostic;          // the remote server's words (one line, blanks folded)
    std::string remote_mta;          // host name or address, without "dns;"
    std::string command;             // MAIL, RCPT, DATA, CONN, ... when the report says
    std::string verdict;             // the reporting MTA's own reason, when it gives one
    Classification classification;
};

struct BounceReport {
    enum class Kind { not_bounce, bounce, auto_reply };
    Kind kind = Kind::not_bounce;
    std::string format;  // "rfc3464", "text", "auto-reply"
    std::string mta;     // the software that wrote the report, when known (bounce_mta.h)
    std::string why;     // for not_bounce: what was missing
    std::vector<BouncedRecipient> recipients;
    std::string addresser;  // the original sender (the returned message's, else the report's To)
    std::string reporting_mta;
    // The returned message, as far as it came back.
    std::string original_message_id;
    std::string original_subject;
    std::vector<std::pair<std::string, std::string>> original_kasi_headers;  // X-Kasi-*
};

}  // namespace kasi
