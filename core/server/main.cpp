// kasi: the MTA daemon. kasi -c DIR [--check-config] | --version
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/log/log.h"
#include "core/server/server.h"
#include "core/server/server_config.h"

namespace {

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: kasi -c DIR [--check-config]\n"
                 "       kasi --version\n"
                 "  -c DIR          configuration root (Haraka layout: DIR/config, DIR/queue)\n"
                 "  --check-config  validate the configuration and exit 0 (valid) or 1\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--version" || a == "-v") {
            std::printf("kasi %s\n", KASI_VERSION);
            return 0;
        } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
            dir = argv[++i];
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
    std::signal(SIGPIPE, SIG_IGN);
    kasi::Diagnostics d;
    auto cfg = kasi::load_server_config(dir, d);
    for (const auto& w : d.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (const auto& e : d.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    if (check) {
        std::printf("%s: configuration %s\n", dir.c_str(), cfg ? "OK" : "has errors");
        return cfg ? 0 : 1;
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
