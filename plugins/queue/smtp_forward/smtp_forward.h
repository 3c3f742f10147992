// queue/smtp_forward: mail goes to a configured next hop (a smarthost, a content filter,
// a downstream MTA) instead of the recipient's MX. Haraka's smtp_forward.ini.
//
// Unlike Haraka, which proxies the transaction synchronously and stores nothing, Kasi
// queues the message durably first (the client's 250 means it is on disk) and delivers it
// through the outbound queue with its retries and DSNs; this plugin only decides the
// route (get_mx). Inbound mail (hook `queue`) and, with `enable_outbound`, relayed mail
// (hook `queue_outbound`) are marked with the note queue.wants=smtp_forward.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_smtp_forward_plugin(const ConfigDir& cfg, const Settings& s,
                                                 Diagnostics& d, HookTable& table,
                                                 uint32_t timeout_ms);

}  // namespace kasi
