// What the complaint parser (arf_parser.h) says about a message that came back through a
// feedback loop: whether it is a complaint at all, and if so what kind (the Feedback-Type),
// about whom (the recipients who complained), and what identifies the message they
// complained about, so that Kasi can match it to what it sent: the envelope sender (a VERP
// return path carries the message and the recipient), the Message-ID, Kasi's own X-Kasi-*
// headers when the returned copy kept them, and the original envelope id (ENVID).
//
// Every string is one line (control characters replaced, blanks folded) and capped, so a
// report can go straight into a log record or a JSON line. Addresses are bare
// ("local@domain", no angle brackets) and lower-cased, like the bounce parser's.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kasi {

struct ComplaintReport {
    enum class Kind { not_complaint, complaint };
    Kind kind = Kind::not_complaint;
    std::string why;  // for not_complaint: what was missing

    // How the report was written: "arf" (a message/feedback-report part, RFC 5965),
    // "arf-text" (the same fields without that part), "hotmail" (Microsoft JMRP),
    // "apple-opt-out" (Apple Mail's unsubscribe message), "ses-json" (an Amazon SES
    // Complaint notification).
    std::string format;

    std::string feedback_type;            // abuse, fraud, virus, other, not-spam, auth-failure,
                                          // opt-out, ... lower-cased as written
    std::vector<std::string> recipients;  // who complained; may be empty (redacted reports)
    std::string original_mail_from;       // its sender: Original-Mail-From (the envelope
                                          // sender), else the returned message's From
    std::string source_ip;                // the address the reported message came from
    std::vector<std::string> reported_domains;
    std::string user_agent;    // the software that wrote the report
    std::string arrival_date;  // when the reported message arrived, as written
    std::string reporting_mta;

    // The reported message, as far as it came back.
    std::string original_message_id;   // its Message-ID, as written (with angle brackets)
    std::string original_return_path;  // its Return-Path (a VERP address), when it came back
    std::string original_from;         // its From (the author's address), when it came back
    std::string original_envelope_id;
    std::vector<std::pair<std::string, std::string>> original_kasi_headers;  // X-Kasi-*
};

}  // namespace kasi
