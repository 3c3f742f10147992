// Reading a bounce written for people. Most MTAs that do not send RFC 3464 reports (qmail,
// Exim, old Sendmail, Exchange, Domino, webmail providers) still write the same few things
// in their own words: a line naming each failed recipient, the remote server's reply under
// or after it, and then a copy of the original message after a separator line. This file
// finds those without knowing which MTA wrote them:
//   - the returned message starts at a separator line ("--- Below this line is a copy of
//     the message.", "------ This is a copy of the message ...", "Original message
//     follows", ...) or at a header block ("Return-Path:", "Received:");
//   - a recipient is an address that stands alone on its line ("<a@b>:", "  a@b",
//     "a@b... User unknown"), or, failing any such line, an address the text mentions;
//     addresses of the report's own sender and receiver and of the returned message's
//     sender are not recipients;
//   - its diagnostic is the text that follows it up to an empty line or the next
//     recipient, else the text's lines that carry a reply code.
// reply_facts() then reads the code, the enhanced status, the SMTP command and the remote
// host out of a diagnostic. Everything here is linear in the text (capped by the caller).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct TextRecipient {
    std::string address;
    std::string diagnostic;
};

struct BounceText {
    std::string report;    // the text before the returned message
    std::string returned;  // the returned message (headers and body) when inline, else ""
};

BounceText split_returned(std::string_view text);

// `exclude`: addresses that are not recipients (lower-cased).
std::vector<TextRecipient> recipients_in_text(std::string_view report,
                                              const std::vector<std::string>& exclude);

// Every address in `text`, lower-cased, in order, without repeats.
std::vector<std::string> addresses_in(std::string_view text, size_t max = 100);

struct ReplyFacts {
    int code = 0;
    std::string status;   // x.y.z
    std::string command;  // CONNECT, EHLO, HELO, MAIL, RCPT, DATA
    std::string host;
};

ReplyFacts reply_facts(std::string_view diagnostic);

// An SMTP transcript in the report (">>> RCPT To:<a@b>" / "<<< 550 ..." lines, as Sendmail
// and others write it): the command whose reply names `address` or starts as `diagnostic`
// does, else the command that named the address ("" when the transcript does not say);
// and when `diagnostic` is the first line of a multi-line reply there ("550-5.7.1 ..."),
// the whole reply (a DSN's Diagnostic-Code often keeps only that first line).
// The transcript's lines of a report (those that start with ">>>" or "<<<"), at most 64 KB:
// worked out once per report, then searched per recipient.
std::string transcript_of(std::string_view report);

struct TranscriptFacts {
    std::string command;
    std::string reply;
};
TranscriptFacts transcript_facts(std::string_view transcript, std::string_view address,
                                 std::string_view diagnostic = {});

// Blanks (CR, LF, tabs, runs of spaces) folded to one space, trimmed, capped.
std::string one_line(std::string_view s, size_t max = 2048);

}  // namespace kasi
