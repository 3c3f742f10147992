#include "core/ctl/ctl_tokens.h"

#include <cstdio>

#include "core/config/config_dir.h"
#include "core/queue/verp.h"
#include "core/smtp/unsubscribe.h"
#include "core/util/clock.h"

namespace kasi {

namespace {

bool config_ok(const Diagnostics& d) {
    for (const auto& e : d.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    return d.errors.empty();
}

}  // namespace

int ctl_verp(const std::string& dir, const std::vector<std::string>& a) {
    if (a.size() != 2 || a[0] != "decode") {
        std::fprintf(stderr, "usage: kasictl -c DIR verp decode ADDRESS\n");
        return 2;
    }
    Diagnostics d;
    auto cfg = VerpConfig::load(ConfigDir(dir + "/config"), d);
    if (!config_ok(d)) return 2;
    if (!cfg) {
        std::fprintf(stderr, "kasictl: VERP is not configured (config/verp.ini)\n");
        return 2;
    }
    std::string why;
    auto v = verp_decode(cfg->secret(), cfg->prefix(), a[1], why);
    if (!v) {
        std::printf("invalid: %s\n", why.c_str());
        return 1;
    }
    std::printf("message %s\n", v->message_id.c_str());
    if (v->rcpt_index >= 0)
        std::printf("index %d\n", v->rcpt_index);
    else
        std::printf("recipient %s\n", v->recipient.c_str());
    return 0;
}

int ctl_unsubscribe(const std::string& dir, const std::vector<std::string>& a) {
    if (a.size() != 2 || a[0] != "verify") {
        std::fprintf(stderr, "usage: kasictl -c DIR unsubscribe verify TOKEN\n");
        return 2;
    }
    Diagnostics d;
    auto cfg = UnsubscribeConfig::load(ConfigDir(dir + "/config"), d);
    if (!config_ok(d)) return 2;
    if (!cfg) {
        std::fprintf(stderr, "kasictl: no config/unsubscribe.ini\n");
        return 2;
    }
    auto t = verify_unsubscribe_token(cfg->secret(), a[1]);
    if (!t) {
        std::printf("invalid: forged, altered or not a token\n");
        return 1;
    }
    std::printf("recipient %s\nlist %s\ntenant %s\nissued %s\n", t->recipient.c_str(),
                t->list.c_str(), t->tenant.c_str(), rfc5322_date(t->issued_s).c_str());
    return 0;
}

}  // namespace kasi
