#include "plugins/ctl_registry.h"

#include "plugins/dkim/ctl_dkim.h"

namespace kasi {

namespace {

const CtlCommand commands[] = {
    {"dkim",
     "dkim keygen DOMAIN SELECTOR [--ed25519] [--bits N] [--user NAME]\ndkim records [DOMAIN]",
     &ctl_dkim},
};

}  // namespace

std::span<const CtlCommand> plugin_ctl_commands() {
    return commands;
}

}  // namespace kasi
