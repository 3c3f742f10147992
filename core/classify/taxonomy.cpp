#include "core/classify/taxonomy.h"

#include <algorithm>
#include <array>
#include <string>

#include "core/util/strings.h"

namespace kasi {

namespace {

// sisimai 5's reasons (libsisimai.org/en/reason), plus failedstarttls (sisimai 5.2).
constexpr std::array<std::string_view, 35> reasons = {
    "authfailure",     "badreputation", "blocked",        "contenterror",    "delivered",
    "exceedlimit",     "expired",       "failedstarttls", "feedback",        "filtered",
    "hasmoved",        "hostunknown",   "mailboxfull",    "mailererror",     "mesgtoobig",
    "networkerror",    "norelaying",    "notaccept",      "notcompliantrfc", "onhold",
    "policyviolation", "rejected",      "requireptr",     "securityerror",   "spamdetected",
    "speeding",        "suspend",       "syntaxerror",    "systemerror",     "systemfull",
    "toomanyconn",     "undefined",     "userunknown",    "vacation",        "virusdetected"};

constexpr std::array<std::string_view, 19> classes = {"delivered",
                                                      "invalid_recipient",
                                                      "mailbox_full",
                                                      "inactive_mailbox",
                                                      "spam_block",
                                                      "reputation_block",
                                                      "rate_limited",
                                                      "policy",
                                                      "content",
                                                      "message_too_big",
                                                      "dns_failure",
                                                      "tls_failure",
                                                      "connection_failure",
                                                      "protocol_error",
                                                      "remote_system",
                                                      "expired",
                                                      "auto_reply",
                                                      "complaint",
                                                      "unknown"};

constexpr std::array<std::string_view, 11> commands = {
    "CONNECT", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "QUIT"};

}  // namespace

std::span<const std::string_view> known_reasons() {
    return reasons;
}

bool is_known_reason(std::string_view name) {
    auto r = known_reasons();
    return std::find(r.begin(), r.end(), name) != r.end();
}

std::span<const std::string_view> known_classes() {
    return classes;
}

bool is_known_class(std::string_view name) {
    return std::find(classes.begin(), classes.end(), name) != classes.end();
}

bool is_known_command(std::string_view name) {
    return std::find(commands.begin(), commands.end(), name) != commands.end();
}

std::string canonical_command(std::string_view name) {
    std::string up;
    for (char c : trim(name)) up += (c >= 'a' && c <= 'z') ? char(c - 32) : c;
    if (up == "CONN" || up == "CONNECTION" || up == "GREETING") return "CONNECT";
    if (up.rfind("MAIL", 0) == 0) return "MAIL";
    if (up.rfind("RCPT", 0) == 0) return "RCPT";
    if (up == "END OF DATA" || up == "DATA" || up == "BODY" || up == ".") return "DATA";
    return is_known_command(up) ? up : std::string();
}

bool parse_scope(std::string_view name, Scope& out) {
    for (Scope s : {Scope::recipient, Scope::message, Scope::sender, Scope::destination}) {
        if (scope_name(s) == name) {
            out = s;
            return true;
        }
    }
    return false;
}

bool parse_outcome_kind(std::string_view name, OutcomeKind& out) {
    for (OutcomeKind k :
         {OutcomeKind::reply, OutcomeKind::connect, OutcomeKind::timeout, OutcomeKind::dns,
          OutcomeKind::tls, OutcomeKind::protocol, OutcomeKind::local}) {
        if (outcome_kind_name(k) == name) {
            out = k;
            return true;
        }
    }
    return false;
}

}  // namespace kasi
