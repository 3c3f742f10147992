#include "core/ctl/ctl_adaptive.h"

#include <rapidjson/document.h>

#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/ctl/ctl_http.h"
#include "core/http/json_parse.h"

namespace kasi {

namespace {

int fail(const std::string& why) {
    std::fprintf(stderr, "kasictl: adaptive: %s\n", why.c_str());
    return 1;
}

std::string str(const rapidjson::Value& v, const char* k) {
    return v.HasMember(k) && v[k].IsString() ? v[k].GetString() : "";
}

int64_t num(const rapidjson::Value& v, const char* k) {
    return v.HasMember(k) && v[k].IsNumber() ? int64_t(v[k].GetDouble()) : 0;
}

std::string utc(int64_t ms) {
    if (ms <= 0) return "-";
    std::time_t t = std::time_t(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

// What an action cuts, in words.
std::string cuts(const rapidjson::Value& a) {
    std::string out;
    auto add = [&out](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
    if (a.HasMember("max_message_rate") && a["max_message_rate"].IsNumber())
        add(fmt::format("rate {:.2f}/min", a["max_message_rate"].GetDouble() * 60));
    if (a.HasMember("connections_factor") && a["connections_factor"].IsNumber())
        add(fmt::format("connections x{:.2f}", a["connections_factor"].GetDouble()));
    if (int64_t c = num(a, "max_connections")) add(fmt::format("connections {}", c));
    if (int64_t m = num(a, "max_messages_per_connection")) add(fmt::format("{} per connection", m));
    if (int64_t s = num(a, "suspended_until_ms")) add("suspended until " + utc(s));
    if (!str(a, "pool").empty()) add("new traffic to pool " + str(a, "pool"));
    return out.empty() ? "alert only" : out;
}

int print(const std::string& json) {
    rapidjson::Document doc;
    std::string err;
    if (!parse_json(doc, json, JsonLimits{}, err) || !doc.IsObject() || !doc.HasMember("actions") ||
        !doc["actions"].IsArray())
        return fail("an answer that is not the actions list: " + err);
    std::printf("%lld rules loaded\n", (long long)num(doc, "rules"));
    const auto& actions = doc["actions"].GetArray();
    if (actions.Empty()) std::printf("no action in force\n");
    for (const auto& a : actions) {
        std::string scope = str(a, "scope");
        std::printf("%s %s at %s: %s level %lld (%s)\n", scope.c_str(),
                    str(a, scope == "domain" ? "domain" : "source").c_str(),
                    str(a, "provider").c_str(), str(a, "rule").c_str(), (long long)num(a, "level"),
                    str(a, "origin").c_str());
        std::printf("  %s; holds until %s, then steps back; since %s\n", cuts(a).c_str(),
                    utc(num(a, "hold_until_ms")).c_str(), utc(num(a, "started_ms")).c_str());
        if (a.HasMember("evidence") && a["evidence"].IsArray())
            for (const auto& e : a["evidence"].GetArray())
                std::printf("  %s  %s\n", utc(num(e, "time_ms")).c_str(), str(e, "reply").c_str());
    }
    return 0;
}

}  // namespace

int ctl_adaptive(const std::string& dir, const std::vector<std::string>& args) {
    bool json = false;
    for (const auto& a : args) {
        if (a != "--json") return fail("unknown word '" + a + "' (--json)");
        json = true;
    }
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    Settings s = load_settings(cfg, dir, d);
    std::string err;
    auto answer = ctl_ask_json(dir, s.queue_dir, "/api/v1/admin/adaptive", "adaptive", err);
    if (!answer) return fail(err);
    if (answer->empty()) return fail(err);
    if (json) {
        std::printf("%s\n", answer->c_str());
        return 0;
    }
    return print(*answer);
}

}  // namespace kasi
