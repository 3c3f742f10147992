// queue/lmtp: inbound mail (hook `queue`) is delivered over LMTP to a local delivery agent
// (Dovecot, Cyrus), through the outbound queue as in Haraka: the message is spooled, then
// get_mx routes it to lmtp.ini's host and port (per recipient domain if it has a section),
// with one reply per recipient after the data.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_lmtp_plugin(const ConfigDir& cfg, const Settings& s, Diagnostics& d,
                                         HookTable& table, uint32_t timeout_ms);

}  // namespace kasi
