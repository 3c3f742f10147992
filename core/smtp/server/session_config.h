// What a session takes from the configuration generation it started in, as values: the
// settings of the SMTP conversation, the hook table, and the step that seals a relayed
// message before the spool. The server fills them from its own configuration
// (core/server/server_config.cpp: session_config()), so the session needs to know nothing
// of how Kasi's configuration is laid out or loaded.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/hooks/seal_input.h"
#include "core/util/ip.h"

namespace kasi {

class HookTable;
class ReportMailboxes;

// The conversation's settings. The defaults and the files they come from are those of
// core/config/settings.h (Settings), which documents every key.
struct SessionSettings {
    std::string me;  // this host's name: banner, replies, Received, Message-ID
    // the banner and reply texts
    std::vector<std::string> greeting;  // the banner's lines; empty: "<me> ESMTP Kasi ready"
    int banner_chars = 0;               // of the session id shown in the default banner
    std::string helo_message, close_message;
    bool show_version = false;  // Kasi's version in the banner and Received
    bool enhanced_status_codes = false;
    // limits
    uint64_t max_bytes = 0;  // of a message
    int max_line_length = 0, max_data_line_length = 0;
    int max_recipients = 0;
    int max_received = 0, max_header_lines = 0, max_mime_parts = 0;
    int inactivity_timeout_s = 0, proxy_timeout_s = 0;
    // what the server offers and does
    bool smtputf8 = false, chunking = false;
    bool strict = false;  // RFC-strict MAIL/RCPT (off: Haraka's leniency, docs/haraka-compat.md)
    bool add_received = false;  // a Received field of its own
    bool rdns_lookup = false;   // core PTR lookup when no plugin answered lookup_rdns
    bool haproxy_enabled = false;
    CidrList haproxy_hosts;  // who may send a PROXY header
};

// Seals a relayed message (core/smtp/seal.h: List-Unsubscribe, VERP, DKIM) with the
// generation's settings, then hands it back to `done` on the loop; the caller checks there
// whether the message is still wanted (its owner may have gone meanwhile).
using SealStep = std::function<void(uv_loop_t*, SealInput, std::function<void(SealInput)> done)>;

struct SessionConfig {
    std::shared_ptr<const SessionSettings> settings;  // null: zeros (sessions never started)
    std::shared_ptr<const HookTable> hooks;           // null: no plugins
    SealStep seal;                                    // null: spooled as it is
    std::shared_ptr<const ReportMailboxes> reports;   // where reports come back (null: none)
};

}  // namespace kasi
