// What a delivery outcome means, in one vocabulary for the whole feedback loop: every
// reply to a delivery attempt, every connection, DNS or TLS failure (and, later, every
// inbound DSN) is classified once, by one rule set (classifier.h), and the verdict, the
// events, the DSN and the metrics all carry the result.
//
//   reason    sisimai's reason names (userunknown, mailboxfull, blocked, ...): the words
//             ESP tooling already shares
//   cls       the coarser class an operator acts on (invalid_recipient, spam_block, ...)
//   hard      the recipient address itself is bad: suppression may act on it
//   scope     what the outcome is about, so later stages know whether to suppress the
//             recipient, slow the (source, provider) pair, or retry elsewhere
//   provider  the mailbox provider of the destination (provider_table.h), "other" if none
//
// reason and cls are bounded sets (docs/bounces.md); rule files may only name those.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kasi {

// What kind of outcome is being classified.
enum class OutcomeKind : uint8_t {
    reply,     // the server answered (code, enhanced status, text)
    connect,   // connection refused / reset / unreachable before the greeting
    timeout,   // a timeout at any stage of the conversation
    dns,       // no usable MX/A/AAAA (NXDOMAIN, null MX, SERVFAIL, malformed answer)
    tls,       // TLS handshake or verification failure
    protocol,  // the server broke the protocol (garbage reply, unexpected close)
    local,     // Kasi itself (expired in the queue, policy, operator bounce)
};
constexpr std::string_view outcome_kind_name(OutcomeKind k) {
    constexpr std::string_view names[] = {"reply", "connect",  "timeout", "dns",
                                          "tls",   "protocol", "local"};
    return names[int(k)];
}

enum class Scope : uint8_t {
    recipient,    // this address (unknown user, mailbox full, disabled)
    message,      // this message (content, size, spam score of the message)
    sender,       // the sending IP or domain: reputation, blocklists, authentication
    destination,  // the receiving site as a whole (MX down, DNS, TLS, throttling a site)
};
constexpr std::string_view scope_name(Scope s) {
    constexpr std::string_view names[] = {"recipient", "message", "sender", "destination"};
    return names[int(s)];
}
constexpr bool scope_from_name(std::string_view n, Scope& out) {
    for (int i = 0; i < 4; ++i)
        if (scope_name(Scope(i)) == n) {
            out = Scope(i);
            return true;
        }
    return false;
}

struct Classification {
    std::string reason = "undefined";  // sisimai reason name
    std::string cls = "unknown";       // class name
    bool hard = false;
    Scope scope = Scope::recipient;
    std::string provider = "other";
    std::string rule;  // which rule decided ("file:line", or "status 5.1.1"), for tracing
};

// What the outcome stage does with one recipient after classification (and after the
// classify_response hook had its say).
enum class Verdict : uint8_t { delivered, defer, bounce };
constexpr std::string_view verdict_name(Verdict v) {
    constexpr std::string_view names[] = {"delivered", "defer", "bounce"};
    return names[int(v)];
}

// The input: everything known about one outcome for one recipient (or a whole
// transaction). Views must outlive the classify() call only.
// For a reply, `text` is the reply as received, all its lines. For the other kinds it is
// a short description of what failed, which rules/classify/10-outcomes.rules reads: for
// dns, "NXDOMAIN" (or "domain not found") makes the recipient domain unknown (hard) and
// "null MX" makes it accept no mail (hard), anything else is a DNS failure; for local,
// "expired" is the queue lifetime (docs/bounces.md, "Outcomes that are not replies").
struct ClassifyInput {
    OutcomeKind kind = OutcomeKind::reply;
    int code = 0;                  // SMTP reply code, 0 if none
    std::string_view enhanced;     // "5.1.1", "" if none
    std::string_view text;         // the reply text (may be multi-line, any bytes)
    std::string_view remote_host;  // MX host name (or IP) that answered, "" if none
    std::string_view command;      // "CONNECT", "EHLO", "MAIL", "RCPT", "DATA", "" = unknown
    std::string_view domain;       // recipient domain (provider fallback)
    std::string_view mta;          // a bounce report's writer ("other": not recognised);
                                   // "" for a reply Kasi received itself
};

}  // namespace kasi
