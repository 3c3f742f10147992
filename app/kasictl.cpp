// kasictl (core/ctl/kasictl.cpp), with the commands the native plugins bring
// (plugins/ctl_registry.h): this file is what lets core/ctl know no plugin.
#include "core/ctl/kasictl.h"
#include "plugins/ctl_registry.h"

int main(int argc, char** argv) {
    return kasi::kasictl_main(argc, argv, kasi::plugin_ctl_commands());
}
