// kasi: the MTA daemon. kasi -c DIR [--check-config [--user NAME]] | --version
// --check-config run as root also loads the configuration as the service's user
// (core/server/check_as_user.h): --user NAME, else the spool directory's owner, else the
// package's kasi.
//
// The one file of the daemon that knows every layer: it attaches the Lua engine (policy/)
// and the native plugins (plugins/) to the server's extension points
// (core/server/extensions.h) before anything else runs, so that core/ includes neither.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/log/log.h"
#include "core/server/check_as_user.h"
#include "core/server/server.h"
#include "core/server/server_config.h"
#include "plugins/registry.h"
#include "policy/lua_extensions.h"

namespace {

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: kasi -c DIR [--check-config [--user NAME]]\n"
                 "       kasi --version\n"
                 "  -c DIR          configuration root (Haraka layout: DIR/config, DIR/queue)\n"
                 "  --check-config  validate the configuration and exit 0 (valid) or 1; as\n"
                 "                  root, also as the user kasi runs as (--user NAME, else\n"
                 "                  the owner of the spool directory, else user kasi for\n"
                 "                  /etc/kasi): every file must be readable by that user\n");
}

// Before any configuration is loaded (check_as_user's child loads one too).
void attach_extensions() {
    kasi::Extensions e;
    kasi::add_policy_extensions(e);
    kasi::add_plugin_extensions(e);
    kasi::install_extensions(std::move(e));
}

}  // namespace

int main(int argc, char** argv) {
    attach_extensions();
    std::string dir, user;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--version" || a == "-v") {
            std::printf("kasi %s\n", KASI_VERSION);
            return 0;
        } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
            dir = argv[++i];
        } else if (a == "--user" && i + 1 < argc) {
            user = argv[++i];
        } else if (a == "--check-config" || a == "-t") {
            check = true;
        } else if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "kasi: unknown argument '%s'\n", a.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (dir.empty()) {
        usage(stderr);
        return 2;
    }
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (access((dir + "/config").c_str(), R_OK | X_OK) != 0) {
        std::fprintf(stderr, "kasi: %s/config: %s\n", dir.c_str(), std::strerror(errno));
        return 1;
    }
    if (!user.empty() && !check) {
        std::fprintf(stderr, "kasi: --user goes with --check-config\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    std::string uerr;
    auto svc = check && ::geteuid() == 0 ? kasi::service_user(user, dir, uerr) : std::nullopt;
    if (!uerr.empty()) {
        std::fprintf(stderr, "kasi: --user: %s\n", uerr.c_str());
        return 2;
    }
    std::vector<std::string> as_user;  // first, before this process starts any thread
    if (svc && svc->uid != 0) as_user = kasi::config_errors_as(*svc, dir);
    kasi::Diagnostics d;
    auto cfg = kasi::load_server_config(dir, d);
    for (const auto& w : d.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (const auto& e : d.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    if (check) {
        size_t more = 0;
        for (const auto& e : as_user)
            if (std::find(d.errors.begin(), d.errors.end(), e) == d.errors.end() && ++more)
                std::fprintf(stderr, "error: as user %s (the service's user): %s\n",
                             svc->name.c_str(), e.c_str());
        bool ok = cfg && more == 0;
        std::printf("%s: configuration %s%s\n", dir.c_str(), ok ? "OK" : "has errors",
                    svc && svc->uid != 0
                        ? (" (checked as root and as user " + svc->name + ")").c_str()
                        : "");
        return ok ? 0 : 1;
    }
    if (!cfg) return 1;
    std::string err;
    if (!kasi::apply_log_settings(cfg->settings, err)) {
        std::fprintf(stderr, "kasi: %s\n", err.c_str());
        return 1;
    }
    kasi::Server server(dir);
    return server.run(cfg);
}
