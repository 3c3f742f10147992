// From a message that came back through a feedback loop to a ComplaintReport
// (complaint_report.h). The same code serves the daemon and `kasictl complaint parse`.
//
// The standard (RFC 5965, the Abuse Reporting Format): a complaint is a
// `multipart/report; report-type=feedback-report` message with three parts:
//   1. text for a human ("This is an email abuse report for ...");
//   2. a `message/feedback-report` part: one block of fields like a header. Feedback-Type
//      (abuse, fraud, virus, other; not-spam from RFC 6650; auth-failure from RFC 6591),
//      User-Agent and Version are required; Original-Mail-From, Original-Rcpt-To (any
//      number), Arrival-Date, Source-IP, Reported-Domain, Reported-URI,
//      Original-Envelope-Id and Reporting-MTA are optional. RFC 6591 adds Auth-Failure,
//      Delivery-Result and DKIM/SPF fields for authentication-failure (DMARC forensic)
//      reports, which travel in the same container;
//   3. the reported message: `message/rfc822`, or only its header as
//      `text/rfc822-headers` (RFC 6591 allows either; some reporters redact it).
//
// What reporters do differently, and what this parser does about it:
//   - Original-Rcpt-To is often left out (it names the complainer, which some providers
//     will not say); the drafts' opt-out reports wrote Removal-Recipient instead.
//     Without either, the recipient is the returned message's To address; when that
//     names nobody ("To: <Undisclosed Recipients>") the complaint has no recipient, and
//     the returned message's Message-ID and X-Kasi-* headers are what is left to match.
//   - Original-Mail-From is often left out too: the returned message's From, else its
//     Return-Path, stands in for it (sisimai's order: the Return-Path is often a
//     provider's bounce address). The Return-Path is kept apart too: when Kasi sent the
//     message with a VERP return path, it names the message and the recipient.
//   - Older drafts wrote Received-Date for Arrival-Date; some write the fields in
//     several blocks, add fields of their own (Abuse-Type, Source, Subscription-Link) or
//     a Message-ID; values come in any case ("Feedback-Type: Abuse", "Source-Ip").
//   - Some reports have `report-type=feedback-report` but no message/feedback-report
//     part (the fields are written into a text part, or the MIME boundary is wrong and
//     the whole body is one text): the fields are then read from the text ("arf-text"),
//     and the returned message from after a "Content-Type: message/rfc822" line.
//   - Microsoft (Hotmail, Outlook.com; the JMRP, and Amazon SES forwarding Microsoft's
//     complaints) sends multipart/mixed with only the complained-about message attached,
//     subject "complaint about message from <IP>": the recipient is that message's
//     X-HmXmrOriginalRecipient header, the source IP the subject's address, the arrival
//     date its X-OriginalArrivalTime ("hotmail").
//   - Apple Mail's unsubscribe button sends a plain message marked X-Apple-Unsubscribe:
//     true from the user to the List-Unsubscribe mailto: address: the recipient is its
//     From, the original sender its To, the type opt-out ("apple-opt-out").
//   - Amazon SES forwards complaints as JSON (an SNS notification by mail, or the JSON on
//     its own): notificationType (or eventType) "Complaint", complainedRecipients,
//     complaintFeedbackType, userAgent, arrivalDate, and the sent message's source and
//     headers ("ses-json"). JSON of any other type is not a complaint.
// A report that does not say its type is taken as "abuse", what nearly every report is.
//
// What is not a complaint: a delivery-status report (a bounce, even of a complaint), a
// read receipt, and anything without one of the marks above. Nothing is guessed from a
// subject alone.
//
// Reports come from anyone, so parsing is bounded and never fails: the MIME reader's
// limits (core/mime/mime_tree.h: depth, part count, decoded bytes), at most 100
// recipients and 20 X-Kasi-* headers, every value one line and capped, JSON nested at
// most 32 deep. Work is linear in the input.
#pragma once

#include <string_view>

#include "core/feedback/complaint_report.h"

namespace kasi {

// Never fails: a message it cannot read is Kind::not_complaint with `why` said. `raw` is
// a whole message (LF or CRLF line ends), or a JSON document (an SES notification).
ComplaintReport parse_complaint(std::string_view raw);

}  // namespace kasi
