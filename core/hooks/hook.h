// Hook names and return codes, exactly Haraka's (haraka-constants), so that plugin authors'
// Haraka knowledge carries over. A handler answers a Result; what each code means for the
// client is decided per hook by the SMTP session (core/smtp/server/responder.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kasi {

enum class Code : int {
    cont = 900,
    stop = 901,
    deny = 902,
    denysoft = 903,
    denydisconnect = 904,
    disconnect = 905,
    ok = 906,
    hook_next = 907,
    delay = 908,
    denysoftdisconnect = 909,
};

std::string_view code_name(Code c);
std::optional<Code> code_from_name(std::string_view name);  // "DENYSOFT", case-insensitive
bool is_deny(Code c);  // DENY, DENYSOFT, DENYDISCONNECT, DENYSOFTDISCONNECT

enum class Hook : int {
    connect_init,
    lookup_rdns,
    connect,
    helo,
    ehlo,
    capabilities,
    unrecognized_command,
    vrfy,
    noop,
    rset,
    mail,
    rcpt,
    rcpt_ok,
    data,
    data_post,
    max_data_exceeded,
    queue,
    queue_outbound,
    pre_send_trans_email,  // relayed mail, before it is spooled for delivery (codes ignored)
    queue_ok,
    reset_transaction,
    quit,
    disconnect,
    deny,
    // outbound (Haraka's outbound hooks; run on the delivery loop without a session)
    send_email,
    get_mx,
    deferred,
    bounce,
    delivered,
    // Kasi's own: the egress source of a delivery (before get_mx)
    get_egress,
    // Kasi's own: the limits of a ready queue, asked when the queue is created and at
    // every reload (provider throttle profiles)
    queue_limits,
    // Kasi's own: a delivery outcome (reply or failure) of one recipient, with the rules'
    // classification; may change the classification, the verdict and the retry delay
    classify_response,
    // Kasi's own: one recipient of a report that came back (a bounce, an auto-reply, a
    // complaint), matched to what Kasi sent, before Kasi acts on it; may veto the event and
    // the suppression, or change or add the suppression
    inbound_report,
    count_
};

constexpr int hook_count = int(Hook::count_);
std::string_view hook_name(Hook h);
std::optional<Hook> hook_from_name(std::string_view name);
// connect_init and disconnect run every plugin and ignore codes; so do capabilities,
// reset_transaction and queue_ok, whose outcome is fixed.
bool hook_runs_all(Hook h);

struct Result {
    Code code = Code::cont;
    std::string msg;  // reply text without the numeric code; empty = the hook's default
    static Result cont() { return {}; }
    static Result ok(std::string m = {}) { return {Code::ok, std::move(m)}; }
    static Result deny(std::string m = {}) { return {Code::deny, std::move(m)}; }
    static Result denysoft(std::string m = {}) { return {Code::denysoft, std::move(m)}; }
};

}  // namespace kasi
