// SMTP command lines as the server's dispatcher reads them (core/smtp/server/commands.cpp):
// split_command, then for MAIL/RCPT strip_path_prefix, parse_path and parse_esmtp_params
// (as written, and as the lenient reading bracket_path makes it), and BDAT's "<size> [LAST]" argument. The input is one command line without its CRLF.
// Properties: a parsed address has no CR, LF or NUL (it goes into headers and the spool),
// a non-literal domain is lower case without a trailing dot, "<>" only where allowed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/smtp/address.h"
#include "core/smtp/command.h"
#include "core/util/strings.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace kasi;

void check_path(std::string_view arg, bool allow_null, bool utf8) {
    auto p = parse_path(arg, allow_null, utf8);
    if (!p.address) {
        FUZZ_CHECK(!p.error.empty());
        return;
    }
    const Address& a = *p.address;
    FUZZ_CHECK(allow_null || !a.null);
    FUZZ_CHECK(utf8 || !a.utf8);  // 8-bit only with SMTPUTF8 (an escaped byte too: F6)
    std::string s = a.str();
    FUZZ_CHECK(fuzz::one_line(s));
    if (a.literal)  // only the address, never a blank, CR or NUL kept as written (F1)
        for (char c : a.domain) FUZZ_CHECK(c > ' ' && c < 0x7f);
    FUZZ_CHECK(!a.null || s.empty());
    if (!a.null && !a.literal) {
        for (char c : a.domain) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
        FUZZ_CHECK(a.domain.empty() || a.domain.back() != '.');
    }
    std::vector<EsmtpParam> params;
    std::string err;
    if (parse_esmtp_params(p.rest, params, err))
        for (const auto& prm : params) {
            FUZZ_CHECK(!prm.key.empty());
            for (char c : prm.key) FUZZ_CHECK(!(c >= 'a' && c <= 'z'));
        }
    else
        FUZZ_CHECK(!err.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto cmd = split_command(line);
    for (char c : cmd.verb) FUZZ_CHECK(!(c >= 'a' && c <= 'z'));
    if (cmd.verb == "MAIL") {
        if (auto rest = strip_path_prefix(cmd.arg, "FROM")) {
            check_path(*rest, true, false);
            check_path(*rest, true, true);
            check_path(bracket_path(*rest, true), true, false);
        }
    } else if (cmd.verb == "RCPT") {
        if (auto rest = strip_path_prefix(cmd.arg, "TO")) {
            check_path(*rest, false, false);
            check_path(*rest, false, true);
            check_path(bracket_path(*rest, false), false, true);
        }
    } else if (cmd.verb == "BDAT") {
        auto parts = split_list(cmd.arg, " ");
        unsigned long long n = 0;
        if (!parts.empty()) (void)parse_u64(parts[0], n);
    } else {
        // Any other line: the path and parameter parsers on the raw argument as well.
        check_path(cmd.arg, true, true);
        std::vector<EsmtpParam> params;
        std::string err;
        (void)parse_esmtp_params(cmd.arg, params, err);
    }
    return 0;
}
