// kasictl's entry point. The commands about the spool, the queues and the running kasi are
// kasictl's own (kasictl.cpp); a native plugin may bring a command about its own files (the
// dkim plugin's `dkim keygen|records`: plugins/dkim/ctl_dkim.h). The program's main
// (app/kasictl.cpp) hands those in, so that core/ctl knows no plugin.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace kasi {

struct CtlCommand {
    const char* name;   // kasictl -c DIR NAME ARGS...
    const char* usage;  // its usage lines without "kasictl -c DIR ", '\n' between lines
    // The exit status: 0, 1 for a failure, 2 for a usage error.
    int (*run)(const std::string& dir, const std::vector<std::string>& args);
};

int kasictl_main(int argc, char** argv, std::span<const CtlCommand> plugin_commands);

}  // namespace kasi
