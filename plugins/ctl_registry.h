// The kasictl commands native plugins bring, each about the plugin's own files (the dkim
// plugin's `dkim keygen|records`). Linked into kasictl only (app/kasictl.cpp), not into
// the daemon.
#pragma once

#include <span>

#include "core/ctl/kasictl.h"

namespace kasi {

std::span<const CtlCommand> plugin_ctl_commands();

}  // namespace kasi
