// What Kasi does with one report that came back to a report mailbox (report_mailboxes.h):
// parse it, match it to what Kasi sent, and say what follows, as data for the caller to
// act on (the report transport writes the events; suppression acts on the matches).
//
// Parsing: the complaint parser (arf_parser.h) first (an Apple opt-out looks like an
// auto-reply), then the bounce parser (bounce_parser.h), which says whether it is a
// bounce, an auto-reply or neither, and classifies each recipient.
//
// Matching, per recipient, in this order:
//   1. the envelope recipient the report came to (for a complaint: the reported message's
//      envelope sender or Return-Path) is a VERP address (verp.h) whose HMAC is valid: the
//      original message id and recipient are in it. A VERP-looking address whose HMAC is
//      wrong is forged: the whole report is not acted on;
//   2. the returned message's Message-ID is one Kasi wrote (<uuid.N@host>): its id.
// The sending domain is the returned message's From domain; the tenant is the one whose
// verp.ini [tenant:] rule names the return-path domain, when exactly one does.
// A report that matches nothing is logged and counted, never acted on.
//
// Events (docs/events.md): a failed recipient is a `Bounce` with "async": true, a delayed
// one a `TransientFailure` with "async": true, an auto-reply an `AutoReply`, a complaint a
// `Complaint` (with its feedback type); each with the
// original message's id, recipient, tenant and sending domain, the report's id and the
// classification.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/feedback/bounce_report.h"

namespace kasi {

class BounceParser;
class VerpConfig;

struct ReportInput {
    std::string_view raw;         // the message as received
    std::string report_id;        // its spool id
    std::vector<std::string> to;  // the report mailboxes it was sent to (envelope)
    std::string mail_from;        // the report's envelope sender
    int64_t now_ms = 0;
};

// What one recipient of the report is about, matched to what Kasi sent.
struct ReportMatch {
    std::string message_id;  // Kasi's id of the original message ("" if unknown)
    std::string recipient;   // the original recipient
    std::string tenant, sending_domain;
    std::string matched_by;             // "verp", "message-id"
    BouncedRecipient bounce;            // a bounce or auto-reply
    std::string feedback_type;          // a complaint: abuse, opt-out, ...
    std::string source_ip, user_agent;  // a complaint: as the report gives them
};

struct ReportOutcome {
    enum class Kind { bounce, auto_reply, complaint, not_report, forged, unmatched };
    Kind kind = Kind::not_report;
    std::string why;                   // for not_report, forged, unmatched
    std::vector<ReportMatch> matches;  // what to act on (bounce, auto_reply)
    std::vector<std::string> events;   // JSON objects, one per match
};

ReportOutcome read_report(const ReportInput& in, const BounceParser& bounces,
                          const VerpConfig* verp);

std::string_view report_kind_name(ReportOutcome::Kind k);

// `s` has the form of a Kasi message id: an uppercase UUID, optionally ".N".
bool looks_like_kasi_id(std::string_view s);

}  // namespace kasi
