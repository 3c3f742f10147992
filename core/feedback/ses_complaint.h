// Amazon SES complaint notifications: SES tells its senders about complaints with JSON,
// by mail (an SNS notification whose body is the JSON), over HTTP or SQS (an SNS envelope
// whose "Message" is the JSON as a string), or as an event of a configuration set
// ("eventType" instead of "notificationType"). A Complaint names complainedRecipients
// (each an emailAddress), complaintFeedbackType (the ARF Feedback-Type, when the
// provider sent one), userAgent, arrivalDate and timestamp; its "mail" object describes
// what was sent: source (the sender), destination, messageId (SES's id) and, when SES
// kept them, the headers (name and value), so a Message-ID and X-Kasi-* headers.
//
// The JSON is parsed with the bounded parser (core/http/json_parse.h: iterative, 32
// levels, 4 MB). A notification by mail may come back with its one long line cut by a
// mail system ("!" + line end + space where it was cut, past 998 octets); when the JSON
// does not parse as it is, those cuts are joined and it is parsed again.
#pragma once

#include <string>
#include <string_view>

#include "core/feedback/complaint_report.h"

namespace kasi {

// A report with format "ses-json" for a Complaint; not_complaint with `why` for JSON that
// does not parse, is not an SES notification or is of another type (Bounce, Delivery).
ComplaintReport ses_complaint(std::string_view json);

// A notification's JSON as it came by mail, its cut lines joined (see above).
std::string join_cut_lines(std::string_view s);

// The JSON object that starts at text[from] ('{'), up to its matching '}' (strings and
// escapes respected, at most 4 MB); "" if it does not close.
std::string_view json_object_at(std::string_view text, size_t from);

}  // namespace kasi
