// auth/flat_file: users and clear-text passwords in auth_flat_file.ini, as Haraka's
// plugin of the same name (the exchange itself is AuthBase's).
//   [core]  methods (PLAIN,LOGIN,CRAM-MD5), constrain_sender (true)
//   [users] name=password
// Clear text is what CRAM-MD5 needs; keep the file readable by Kasi only (a warning is
// logged when group or others can read it).
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_auth_flat_file_plugin(const ConfigDir& cfg, const Settings& s,
                                                   Diagnostics& d, HookTable& table,
                                                   uint32_t timeout_ms);

}  // namespace kasi
