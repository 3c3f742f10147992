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

}  // namespace kasi
