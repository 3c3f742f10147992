#include "core/hooks/hook.h"
#include "core/hooks/plugin.h"

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
                                           "pre_send_trans_email",
                                           "queue_ok",
                                           "reset_transaction",
                                           "quit",
                                           "disconnect",
                                           "deny",
                                           "send_email",
                                           "get_mx",
                                           "deferred",
                                           "bounce",
                                           "delivered",
                                           "get_egress",
                                           "queue_limits",
                                           "classify_response",
                                           "inbound_report"};
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
           h == Hook::reset_transaction || h == Hook::queue_ok || h == Hook::delivered;
}

std::optional<NextHop> parse_next_hop(std::string_view t, std::string& err) {
    NextHop h;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t.starts_with("lmtp://")) {
        h.lmtp = true;
        t.remove_prefix(7);
    } else if (t.starts_with("smtp://")) {
        t.remove_prefix(7);
    }
    if (!t.empty() && t.back() == '/') t.remove_suffix(1);
    if (size_t at = t.rfind('@'); at != std::string_view::npos) {  // smtp://user:pass@host
        std::string_view cred = t.substr(0, at);
        t = t.substr(at + 1);
        size_t colon = cred.find(':');
        h.auth_user = std::string(cred.substr(0, colon));
        if (colon != std::string_view::npos) h.auth_pass = std::string(cred.substr(colon + 1));
    }
    std::string_view port;
    if (!t.empty() && t.front() == '[') {
        size_t close = t.find(']');
        if (close == std::string_view::npos) {
            err = "unclosed '['";
            return std::nullopt;
        }
        h.host = std::string(t.substr(1, close - 1));
        std::string_view rest = t.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                err = "junk after ']'";
                return std::nullopt;
            }
            port = rest.substr(1);
        }
    } else {
        size_t colon = t.find(':');
        if (colon != std::string_view::npos && t.find(':', colon + 1) == std::string_view::npos) {
            h.host = std::string(t.substr(0, colon));
            port = t.substr(colon + 1);
        } else {
            h.host = std::string(t);  // a bare IPv6 address has several colons and no port
        }
    }
    if (h.host.empty()) {
        err = "no host";
        return std::nullopt;
    }
    if (!port.empty()) {
        unsigned long v = 0;
        for (char c : port) {
            if (c < '0' || c > '9' || v > 65535) {
                err = "bad port";
                return std::nullopt;
            }
            v = v * 10 + unsigned(c - '0');
        }
        if (v == 0 || v > 65535) {
            err = "bad port";
            return std::nullopt;
        }
        h.port = uint16_t(v);
    } else if (h.lmtp) {
        h.port = 24;
    }
    return h;
}

}  // namespace kasi
