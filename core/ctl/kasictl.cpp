// kasictl: inspect a spool, safely while kasi runs (read-only: segments are append-only and
// an unfinished tail is ignored).
//   kasictl -c DIR count | list [--limit N] | show ID [--body] | export OUTDIR | queue
//   kasictl -c DIR flush|suspend|resume|delete|bounce|reload|status|metrics|reopen-logs
//   (the running kasi's control socket or admin API; ctl_http.h)
// A usage error (unknown command or option, missing or extra words, a bad number) is a
// message on stderr and exit 2; a failure (unknown message id, kasi not running) exit 1.
//   kasictl -c DIR resolve ...  (ctl_resolve.h)
//   kasictl -c DIR NAME ...  the commands native plugins bring (kasictl.h), such as
//                            dkim keygen|records (plugins/dkim/ctl_dkim.h)
//   kasictl -c DIR verp decode | unsubscribe verify ...  (ctl_tokens.h)
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/ctl/ctl_adaptive.h"
#include "core/ctl/ctl_bounce.h"
#include "core/ctl/ctl_complaint.h"
#include "core/ctl/ctl_http.h"
#include "core/ctl/ctl_reputation.h"
#include "core/ctl/ctl_resolve.h"
#include "core/ctl/ctl_socket.h"
#include "core/ctl/ctl_suppress_file.h"
#include "core/ctl/ctl_suppress_http.h"
#include "core/ctl/ctl_tokens.h"
#include "core/ctl/kasictl.h"
#include "core/http/http_config.h"
#include "core/spool/spool_reader.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace {

std::span<const kasi::CtlCommand> plugin_commands;  // set once by kasictl_main

void usage(FILE* f) {
    std::fprintf(
        f,
        "usage: kasictl -c DIR count\n"
        "       kasictl -c DIR list [--limit N]\n"
        "       kasictl -c DIR show ID [--body]\n"
        "       kasictl -c DIR export OUTDIR [--limit N]  (each message as OUTDIR/ID.eml)\n"
        "       kasictl -c DIR queue   (the delivery summary kasi writes every second, JSON)\n"
        "       kasictl -c DIR flush [DOMAIN] | suspend DOMAIN|rq:KEY [REASON...] |\n"
        "                      resume DOMAIN|rq:KEY | delete ID|@DOMAIN | bounce ID|@DOMAIN\n"
        "       kasictl -c DIR suppress check ADDRESS [SCOPE...] |\n"
        "                      list [SCOPE|*] [LIMIT] [AFTER] (then \"next: AFTER\") |\n"
        "                      add ADDRESS [SCOPE|-] [REASON] [EXPIRES] | remove ADDRESS "
        "[SCOPE|-]\n"
        "                      (the suppression list, docs/suppression.md)\n"
        "       kasictl -c DIR suppress import FILE | export [FILE]  (CSV: through the admin\n"
        "                      API while kasi runs; with kasi stopped, the list itself)\n"
        "       kasictl -c DIR reload   (load the config and policies again; prints why not)\n"
        "       kasictl -c DIR status   (the running config generation, the last reload)\n"
        "       kasictl -c DIR metrics  (what policies publish, Prometheus text format)\n"
        "       kasictl -c DIR reopen-logs  (open the log file and the event log again,\n"
        "                      after logrotate renamed them; SIGHUP does it too)\n"
        "       kasictl -c DIR reputation [--source S] [--domain D] [--provider P] [--tenant T]\n"
        "                      [--rollups] [--limit N] [--json]  (the reputation matrix,\n"
        "                      docs/reputation.md; '' names a roll-up's wildcard)\n"
        "       kasictl -c DIR tenant pause TENANT [REASON] | resume TENANT | list [all]\n"
        "                      (per-tenant circuit breakers, docs/adaptive.md)\n"
        "       kasictl -c DIR adaptive [--json]  (the automation rules' actions in force,\n"
        "                      docs/adaptive.md)\n"
        "       kasictl -c DIR resolve TYPE NAME... [--again]\n"
        "       kasictl -c DIR resolve route DOMAIN [--prefer v4|v6|only_v4|only_v6] "
        "[--local-mx-ok]\n"
        "       kasictl -c DIR verp decode ADDRESS\n"
        "       kasictl -c DIR unsubscribe verify TOKEN\n"
        "       kasictl -c DIR http token NAME [SCOPES]  (a new API token: send,admin,metrics)\n"
        "       kasictl [-c DIR] bounce parse FILE...  (bounce messages: one JSON line per\n"
        "                      bounced recipient, docs/bounces.md)\n"
        "       kasictl [-c DIR] bounce classify < LINES  (the bounce classifier: LINES are\n"
        "                      code<TAB>status<TAB>text<TAB>host, docs/bounces.md)\n"
        "       kasictl [-c DIR] complaint parse FILE...  (feedback-loop reports: one JSON\n"
        "                      line per complaining recipient, docs/complaints.md)\n");
    for (const auto& c : plugin_commands)
        for (const auto& line : kasi::split_list(c.usage, "\n"))
            std::fprintf(f, "       kasictl -c DIR %s\n", line.c_str());
    std::fprintf(
        f,
        "       kasictl --spool PATH ...   (a spool directory instead of -c)\n"
        "  The admin commands (flush ... metrics, queue) go through the HTTP API when\n"
        "  config/http.ini has a plain listen address ($KASI_API_TOKEN is sent as the bearer\n"
        "  token), else through the control socket; --socket forces the socket.\n");
}

// Writes every spooled message's bytes (as they will be sent) to OUTDIR/ID.eml, one file
// each, for inspection with mail tools; prints how many it wrote.
int export_messages(const std::string& spool, const kasi::SpoolSnapshot& snap,
                    const std::string& outdir, long limit) {
    if (outdir.empty()) {
        usage(stderr);
        return 2;
    }
    if (mkdir(outdir.c_str(), 0700) != 0 && errno != EEXIST) {
        std::fprintf(stderr, "kasictl: %s: %s\n", outdir.c_str(), std::strerror(errno));
        return 1;
    }
    long n = 0;
    for (const auto& m : snap.messages) {
        if (limit >= 0 && n >= limit) break;
        std::string b, err;
        if (!kasi::read_message_body(spool, m, b, err)) {
            std::fprintf(stderr, "kasictl: %s\n", err.c_str());
            return 1;
        }
        if (m.env.id.empty() || m.env.id.find('/') != std::string::npos || m.env.id[0] == '.') {
            std::fprintf(stderr, "kasictl: skipped a message whose id is no file name: %s\n",
                         m.env.id.c_str());
            continue;
        }
        std::string path = outdir + "/" + m.env.id + ".eml";
        FILE* f = std::fopen(path.c_str(), "wb");
        bool ok = f && std::fwrite(b.data(), 1, b.size(), f) == b.size();
        if (f && std::fclose(f) != 0) ok = false;
        if (!ok) {
            std::fprintf(stderr, "kasictl: %s: %s\n", path.c_str(), std::strerror(errno));
            return 1;
        }
        ++n;
    }
    std::printf("exported %ld messages to %s\n", n, outdir.c_str());
    return 0;
}

std::string when(int64_t ms) {
    if (ms <= 0) return "-";
    return kasi::rfc5322_date(ms / 1000);
}

// Sends one command line to the running kasi's control socket (core/queue/control.h).
int control(const std::string& spool, const std::string& line) {
    std::string reply, err;
    if (!kasi::ctl_socket_request(spool, line, reply, err)) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    std::fwrite(reply.data(), 1, reply.size(), stdout);
    return reply.rfind("ok", 0) == 0 ? 0 : 1;
}

// queue/queues.json is rewritten (whole, by rename) every second by the delivery loop.
int print_queue_summary(const std::string& spool) {
    std::string path = spool + "/queues.json";
    FILE* f = std::fopen(path.c_str(), "re");
    if (!f) {
        std::fprintf(stderr, "kasictl: %s: %s (is kasi running?)\n", path.c_str(),
                     std::strerror(errno));
        return 1;
    }
    std::string text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && std::time(nullptr) - st.st_mtime > 5)
        std::fprintf(stderr, "kasictl: %s is %lld s old: kasi is not running\n", path.c_str(),
                     (long long)(std::time(nullptr) - st.st_mtime));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

// kasictl http token NAME [SCOPES]: prints the secret once and the line for http_tokens.
int http_token(const std::vector<std::string>& args) {
    if (args.size() < 2 || args.size() > 3 || args[0] != "token") {
        usage(stderr);
        return 2;
    }
    unsigned scopes = args.size() == 3 ? kasi::parse_http_scopes(args[2]) : kasi::scope_send;
    if (!scopes || args[1].find_first_of(" \t") != std::string::npos) {
        std::fprintf(stderr, "kasictl: scopes are send, admin, metrics (comma-separated)\n");
        return 2;
    }
    std::string token;
    std::string line = kasi::make_http_token_line(args[1], scopes, token);
    std::printf("token: %s\n# add this line to config/http_tokens (the token is not stored):\n%s\n",
                token.c_str(), line.c_str());
    return 0;
}

// delete/bounce ID: an id the spool does not hold is an error (kasi would drop nothing);
// 0 when it is queued, else the exit status.
int check_queued(const std::string& spool, const std::string& id) {
    kasi::SpoolSnapshot snap;
    std::string err;
    if (!kasi::read_spool(spool, snap, err)) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    for (const auto& m : snap.messages)
        if (m.env.id == id) return 0;
    std::fprintf(stderr, "kasictl: no queued message with id %s\n", id.c_str());
    return 1;
}

// The words a command takes: [min, max] after the command name, and its options.
struct CommandShape {
    const char* name;
    size_t min, max;
    bool limit, body;
};

constexpr CommandShape shapes[] = {
    {"count", 0, 0, false, false},     {"list", 0, 0, true, false},
    {"show", 1, 1, false, true},       {"export", 1, 1, true, false},
    {"queue", 0, 0, false, false},     {"flush", 0, 1, false, false},
    {"suspend", 1, 64, false, false},  {"resume", 1, 1, false, false},
    {"delete", 1, 1, false, false},    {"bounce", 1, 1, false, false},
    {"reload", 0, 0, false, false},    {"status", 0, 0, false, false},
    {"metrics", 0, 0, false, false},   {"reopen-logs", 0, 0, false, false},
    {"suppress", 1, 16, false, false}, {"tenant", 1, 64, false, false},
};

int usage_error(const std::string& why) {
    std::fprintf(stderr, "kasictl: %s\n", why.c_str());
    usage(stderr);
    return 2;
}

struct Args {
    std::string dir, spool, cmd;
    std::vector<std::string> rest;
    long limit = -1;
    bool has_limit = false, body = false;
    bool use_socket = false;  // the control socket even when the HTTP API is configured
};

// Parses and checks the generic commands' words; 0 = go on, else the exit status.
int parse_args(int argc, char** argv, Args& a) {
    for (int i = 1; i < argc; ++i) {
        std::string w = argv[i];
        bool has_value = i + 1 < argc;
        if (w == "-c" || w == "--spool" || w == "--limit") {
            if (!has_value) return usage_error(w + " needs a value");
            std::string v = argv[++i];
            if (w == "-c") a.dir = v;
            if (w == "--spool") a.spool = v;
            if (w == "--limit") {
                unsigned long long n = 0;
                if (!kasi::parse_u64(v, n) || n > 1000000000ull)
                    return usage_error("--limit needs a number of messages, not '" + v + "'");
                a.limit = long(n);
                a.has_limit = true;
            }
        } else if (w == "--body") {
            a.body = true;
        } else if (w == "--socket") {
            a.use_socket = true;
        } else if (w == "-h" || w == "--help") {
            usage(stdout);
            return -1;
        } else if (w.size() > 1 && w[0] == '-' && a.cmd != "suspend") {
            return usage_error("unknown option " + w);
        } else if (a.cmd.empty()) {
            a.cmd = w;
        } else {
            a.rest.push_back(w);
        }
    }
    if (a.cmd.empty()) return usage_error("no command");
    if (a.dir.empty() && a.spool.empty()) return usage_error("-c DIR or --spool PATH is needed");
    const CommandShape* shape = nullptr;
    for (const auto& sh : shapes)
        if (a.cmd == sh.name) shape = &sh;
    if (!shape) return usage_error("unknown command '" + a.cmd + "'");
    if (a.rest.size() < shape->min)
        return usage_error(a.cmd + " needs " +
                           (a.cmd == "export" ? "an output directory" : "an argument"));
    if (a.rest.size() > shape->max) return usage_error("too many words for " + a.cmd);
    if (a.has_limit && !shape->limit) return usage_error("--limit is for list and export");
    if (a.body && !shape->body) return usage_error("--body is for show");
    return 0;
}

}  // namespace

int kasi::kasictl_main(int argc, char** argv, std::span<const CtlCommand> commands) {
    plugin_commands = commands;
    // The offline bounce tools (classify, parse) need no running daemon and no spool.
    auto offline = [](const char* w) {
        return std::strcmp(w, "classify") == 0 || std::strcmp(w, "parse") == 0;
    };
    if (argc >= 3 && std::strcmp(argv[1], "bounce") == 0 && offline(argv[2]))
        return kasi::ctl_bounce("", std::vector<std::string>(argv + 2, argv + argc));
    if (argc >= 5 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "bounce") == 0 &&
        offline(argv[4]))
        return kasi::ctl_bounce(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    // The complaint parser is offline too.
    if (argc >= 2 && std::strcmp(argv[1], "complaint") == 0)
        return kasi::ctl_complaint("", std::vector<std::string>(argv + 2, argv + argc));
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "complaint") == 0)
        return kasi::ctl_complaint(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    // suppress import|export: through the running kasi's API, else (kasi stopped, or no
    // API) with the list opened here.
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "suppress") == 0) {
        std::vector<std::string> words(argv + 4, argv + argc);
        if (auto rc = kasi::ctl_suppress_http(argv[2], words)) return *rc;
        if (auto rc = kasi::ctl_suppress_file(argv[2], words)) return *rc;
    }
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "adaptive") == 0)
        return kasi::ctl_adaptive(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "reputation") == 0)
        return kasi::ctl_reputation(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "resolve") == 0)
        return kasi::ctl_resolve(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    for (const auto& c : commands)
        if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], c.name) == 0)
            return c.run(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "verp") == 0)
        return kasi::ctl_verp(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "http") == 0)
        return http_token(std::vector<std::string>(argv + 4, argv + argc));
    if (argc >= 4 && std::strcmp(argv[1], "-c") == 0 && std::strcmp(argv[3], "unsubscribe") == 0)
        return kasi::ctl_unsubscribe(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    Args a;
    if (int rc = parse_args(argc, argv, a)) return rc < 0 ? 0 : rc;
    const std::string& cmd = a.cmd;
    const auto& rest = a.rest;
    std::string spool = a.spool, id = rest.empty() ? "" : rest[0];
    long limit = a.limit;
    bool body = a.body;
    bool is_control = cmd == "flush" || cmd == "suspend" || cmd == "resume" || cmd == "delete" ||
                      cmd == "bounce" || cmd == "suppress" || cmd == "tenant";
    bool is_admin = cmd == "reload" || cmd == "status" || cmd == "metrics" || cmd == "reopen-logs";
    if (spool.empty()) {
        kasi::Diagnostics d;
        kasi::ConfigDir cfg(a.dir + "/config");
        spool = kasi::load_settings(cfg, a.dir, d).queue_dir;
    }
    if ((cmd == "delete" || cmd == "bounce") && id[0] != '@')
        if (int rc = check_queued(spool, id)) return rc;
    if ((is_control || is_admin || cmd == "queue") && !a.dir.empty() && !a.use_socket)
        if (auto rc = kasi::ctl_http(a.dir, cmd, rest)) return *rc;
    if (cmd == "queue") return print_queue_summary(spool);
    if (is_control || is_admin) {
        std::string line = cmd;
        for (const auto& w : rest) line += " " + w;
        return control(spool, line);
    }
    kasi::SpoolSnapshot snap;
    std::string err;
    if (!kasi::read_spool(spool, snap, err)) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    if (cmd == "count") {
        size_t rcpts = 0;
        for (const auto& m : snap.messages) rcpts += m.env.rcpts.size();
        std::printf("messages %zu\nrecipients %zu\n", snap.messages.size(), rcpts);
        return 0;
    }
    if (cmd == "list") {
        long n = 0;
        for (const auto& m : snap.messages) {
            if (limit >= 0 && n++ >= limit) break;
            std::printf("%s\t%s\t<%s>\t%zu rcpt\t%llu bytes\tattempts=%d\n", m.env.id.c_str(),
                        when(m.env.received_ms).c_str(), m.env.mail_from.c_str(),
                        m.env.rcpts.size(), (unsigned long long)m.body_size, m.state.attempts);
        }
        return 0;
    }
    if (cmd == "export") return export_messages(spool, snap, id, limit);
    if (cmd == "show") {
        for (const auto& m : snap.messages) {
            if (m.env.id != id) continue;
            const auto& e = m.env;
            std::printf(
                "id: %s\nreceived: %s\nfrom: <%s>\nclient: %s helo=%s tls=%s relaying=%s%s\n",
                e.id.c_str(), when(e.received_ms).c_str(), e.mail_from.c_str(), e.client_ip.c_str(),
                e.helo.c_str(), e.tls ? "yes" : "no", e.relaying ? "yes" : "no",
                e.auth_user.empty() ? "" : (" auth=" + e.auth_user).c_str());
            if (!e.tenant.empty()) std::printf("tenant: %s\n", e.tenant.c_str());
            if (!e.campaign.empty()) std::printf("campaign: %s\n", e.campaign.c_str());
            std::printf("size: %llu\nattempts: %d\nnext due: %s\nrecipients:\n",
                        (unsigned long long)m.body_size, m.state.attempts,
                        when(m.state.next_due_ms).c_str());
            for (size_t i = 0; i < e.rcpts.size(); ++i) {
                const auto& rs = m.state.rcpts[i];
                std::printf("  <%s> %s%s%s\n", e.rcpts[i].c_str(),
                            std::string(kasi::rcpt_status_name(rs.status)).c_str(),
                            rs.last_reply.empty() ? "" : " ", rs.last_reply.c_str());
            }
            for (const auto& [k, v] : e.notes) std::printf("note %s: %s\n", k.c_str(), v.c_str());
            if (!m.state.history.empty()) std::printf("history:\n");
            for (const auto& h : m.state.history) std::printf("  %s\n", h.c_str());
            if (body) {
                std::string b;
                if (!kasi::read_message_body(spool, m, b, err)) {
                    std::fprintf(stderr, "kasictl: %s\n", err.c_str());
                    return 1;
                }
                std::printf("\n");
                std::fwrite(b.data(), 1, b.size(), stdout);
            }
            return 0;
        }
        std::fprintf(stderr, "kasictl: no queued message with id %s\n", id.c_str());
        return 1;
    }
    usage(stderr);
    return 2;
}
