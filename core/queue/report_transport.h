// The report transport: where a message that came to a report mailbox (a bounce, a
// complaint, an auto-reply: core/feedback/report_mailboxes.h) goes instead of an SMTP
// connection. The router sends such a message here; like Postfix's local transports, this
// stage "delivers" it by reading it:
//
//   1. its bytes are read from the spool (body_store.h, off the loop);
//   2. it is parsed and matched to what Kasi sent on libuv's thread pool
//      (core/feedback/report_reader.h: the complaint and bounce parsers, VERP, Message-ID);
//      and the suppression policy plans what to add for each matched recipient;
//   3. back on the loop, the inbound_report hook (report_hook.h) may veto a recipient or
//      change its suppression;
//   4. the suppressions are added durably on the thread pool;
//   5. back on the loop, what it says goes to the event log (Complaint; Bounce /
//      TransientFailure / AutoReply with "async": true; one per matched recipient not vetoed);
//      a report that is not a bounce, is forged or matches nothing is logged and counted, never
//      acted on (and kept: <spool>/reports-kept/<id>.eml);
//   6. the outcome stage records the report itself as delivered ("250 2.0.0 report read"),
//      so it leaves the spool only after what it said was handed on. A crash before that
//      reads it again after the restart (at least once, never lost).
// A report that cannot be read from the spool is deferred and retried like any delivery.
#pragma once

#include <cstdint>
#include <memory>

#include "core/feedback/report_reader.h"
#include "core/queue/delivery_context.h"

namespace kasi {

class Outcome;

struct ReportCounts {
    uint64_t read = 0, bounce = 0, auto_reply = 0, complaint = 0, not_report = 0, forged = 0,
             unmatched = 0;
    uint64_t events = 0;
};

class ReportTransport {
  public:
    ReportTransport(DeliveryContext& ctx, Outcome& outcome) : ctx_(ctx), outcome_(outcome) {}

    void take(std::unique_ptr<Delivery> d);
    const ReportCounts& counts() const { return counts_; }

  private:
    struct Work;
    void parse(std::unique_ptr<Delivery> d, std::string body);
    void parsed(std::unique_ptr<Work> w);
    void ask_hook(std::unique_ptr<Work> w);
    void act(std::unique_ptr<Work> w);
    void retry_later(std::unique_ptr<Work> w);
    void finish(std::unique_ptr<Work> w);
    void count_in_reputation(ReportOutcome::Kind kind, const ReportMatch& m);

    DeliveryContext& ctx_;
    Outcome& outcome_;
    ReportCounts counts_;
};

}  // namespace kasi
