// Splitting an SMTP command line into verb and argument, and MAIL/RCPT parameters
// (RFC 1869 esmtp-keyword[=esmtp-value]) into a list.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct CommandLine {
    std::string verb;  // uppercased
    std::string arg;   // the rest, leading blanks removed
};

CommandLine split_command(std::string_view line);

struct EsmtpParam {
    std::string key;  // uppercased
    std::optional<std::string> value;
};

// False (with `err`) on a malformed parameter list.
bool parse_esmtp_params(std::string_view s, std::vector<EsmtpParam>& out, std::string& err);

// MAIL FROM:/RCPT TO: prefix; returns the text after the colon, or nullopt.
std::optional<std::string_view> strip_path_prefix(std::string_view arg, std::string_view prefix);

// Haraka's reading of what follows "MAIL FROM:" or "RCPT TO:" when not strict (its
// rfc1869.js): spaces and tabs after the colon are skipped, a path without angle brackets
// ("a@b.example SIZE=10") gets them back, and an empty MAIL FROM: is the null sender. A
// bracketed path is returned as it is.
std::string bracket_path(std::string_view rest, bool mail);

}  // namespace kasi
