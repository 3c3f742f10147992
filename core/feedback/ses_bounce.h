// Amazon SES bounce and delivery notifications: SES tells its senders what became of a
// message with JSON (by mail, as the whole body of an SNS notification, or in an SNS
// envelope's "Message" string). A Bounce lists bouncedRecipients, each with the
// emailAddress, action, status and diagnosticCode ("smtp; 550 5.1.1 ...") of a DSN, and
// says bounceType/bounceSubType (Transient/MailboxFull, ...); a Delivery lists the
// recipients that got it with the smtpResponse; a Complaint lists complainedRecipients
// (a complaint, reason "feedback": ses_complaint.h reads its details). The recipients
// come out as a DSN's would, so the bounce parser classifies them the same way.
//
// The JSON is parsed with the bounded parser (core/http/json_parse.h: iterative, 32
// levels, 4 MB); at most 1000 recipients are kept.
#pragma once

#include <string_view>

#include "core/feedback/bounce_report.h"

namespace kasi {

// A report with format "ses-json" (kind bounce) when `text` starts with an SES
// notification's JSON object of type Bounce, Delivery or Complaint; else kind not_bounce.
// The recipients are not classified yet, but for a verdict the notification gives
// (BouncedRecipient::verdict: feedback, delivered, or what a bounce sub-type says).
BounceReport ses_bounce(std::string_view text);

}  // namespace kasi
