// From a message that came back to a return path to a BounceReport (bounce_report.h).
//
// In this order:
//   1. the message is read as a MIME tree (core/mime, bounded);
//   2. a delivery-status report (RFC 3464: a message/delivery-status part, or the same
//      fields written into a text part) gives the recipients, their actions, statuses,
//      remote MTAs and diagnostics; a recipient without a Diagnostic-Code takes the words
//      the human-readable part says about it;
//   3. otherwise, a message that says it is a bounce (a mailer-daemon or postmaster sender,
//      a bounce subject, X-Failed-Recipients, a multipart/report) is read as text
//      (bounce_text.h): the recipients it names and the diagnostic under each;
//   4. otherwise, an auto-reply (RFC 3834 Auto-Submitted: auto-replied, the X-Autoreply
//      family, an out-of-office subject) is reported as one with reason `vacation`;
//   5. anything else is not a bounce: nothing is guessed.
// Each recipient is classified by the same Classifier as outbound replies (reply code,
// status, diagnostic, remote MTA, SMTP command), so a bounce that arrives days later gets
// the same reason, class and hard/soft a synchronous refusal would.
#pragma once

#include <memory>
#include <string_view>

#include "core/classify/classifier.h"
#include "core/feedback/bounce_report.h"

namespace kasi {

class BounceParser {
  public:
    explicit BounceParser(std::shared_ptr<const Classifier> classifier)
        : classifier_(std::move(classifier)) {}

    // Never fails: a message it cannot read is Kind::not_bounce with `why` said.
    BounceReport parse(std::string_view raw) const;

  private:
    std::shared_ptr<const Classifier> classifier_;
};

}  // namespace kasi
