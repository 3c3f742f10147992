#include "core/hooks/hook.h"

#include "core/util/strings.h"

namespace kasi {

namespace {
constexpr std::string_view code_names[] = {
    "CONT",       "STOP", "DENY",      "DENYSOFT", "DENYDISCONNECT",
    "DISCONNECT", "OK",   "HOOK_NEXT", "DELAY",    "DENYSOFTDISCONNECT"};
constexpr std::string_view hook_names[] = {"connect_init",
                                           "lookup_rdns",
                                           "connect",
                                           "helo",
                                           "ehlo",
                                           "capabilities",
                                           "unrecognized_command",
                                           "vrfy",
                                           "noop",
                                           "rset",
                                           "mail",
                                           "rcpt",
                                           "rcpt_ok",
                                           "data",
                                           "data_post",
                                           "max_data_exceeded",
                                           "queue",
                                           "queue_outbound",
                                           "queue_ok",
                                           "reset_transaction",
                                           "quit",
                                           "disconnect",
                                           "deny"};
static_assert(std::size(hook_names) == hook_count);
}  // namespace

std::string_view code_name(Code c) {
    int i = int(c) - 900;
    return (i >= 0 && i < int(std::size(code_names))) ? code_names[i] : "UNKNOWN";
}

std::optional<Code> code_from_name(std::string_view name) {
    for (size_t i = 0; i < std::size(code_names); ++i)
        if (iequals(code_names[i], name)) return Code(900 + int(i));
    return std::nullopt;
}

bool is_deny(Code c) {
    return c == Code::deny || c == Code::denysoft || c == Code::denydisconnect ||
           c == Code::denysoftdisconnect;
}

std::string_view hook_name(Hook h) {
    return hook_names[int(h)];
}

std::optional<Hook> hook_from_name(std::string_view name) {
    for (int i = 0; i < hook_count; ++i)
        if (hook_names[i] == name) return Hook(i);
    return std::nullopt;
}

bool hook_runs_all(Hook h) {
    return h == Hook::connect_init || h == Hook::disconnect || h == Hook::capabilities ||
           h == Hook::reset_transaction || h == Hook::queue_ok;
}

}  // namespace kasi
