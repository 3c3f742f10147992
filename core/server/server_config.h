// One generation of configuration: core settings plus the hook table built from
// config/plugins. Immutable and shared by every loop through shared_ptr; a reload builds a
// new generation and loops pick it up for new connections. A session sees its generation
// through session_config(): its own settings, the hooks and the sealing step.
#pragma once

#include <memory>
#include <string>

#include "core/config/diagnostics.h"
#include "core/config/settings.h"
#include "core/feedback/report_mailboxes.h"
#include "core/reputation/reputation_config.h"
#include "core/suppression/suppression_policy.h"
#include "core/hooks/plugin.h"
#include "core/http/http_config.h"
#include "core/queue/outbound_config.h"
#include "core/smtp/server/session_config.h"
#include "core/smtp/unsubscribe.h"

namespace kasi {

struct ServerConfig {
    std::string base_dir;  // the -c DIR
    Settings settings;
    std::shared_ptr<const HookTable> hooks;
    std::shared_ptr<const OutboundConfig> outbound;
    std::shared_ptr<const UnsubscribeConfig> unsubscribe;  // unsubscribe.ini (null: none)
    std::shared_ptr<const HttpConfig> http;                // http.ini (null: the API is off)
    std::shared_ptr<const ReportMailboxes> reports;  // feedback.ini + VERP domains (null: none)
    std::shared_ptr<const SuppressionPolicy> suppression;  // suppression.ini
    std::shared_ptr<const ReputationConfig> reputation;    // reputation.ini
    std::shared_ptr<const SessionSettings> session;  // from `settings`
    uint64_t generation = 0;
};

// Reads DIR/config completely; errors and warnings go to `d`. Returns null on errors.
std::shared_ptr<const ServerConfig> load_server_config(const std::string& base_dir, Diagnostics& d);

// What a session of generation `cfg` is given (core/smtp/server/session_config.h).
SessionConfig session_config(const std::shared_ptr<const ServerConfig>& cfg);

}  // namespace kasi
