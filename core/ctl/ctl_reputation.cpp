#include "core/ctl/ctl_reputation.h"

#include <rapidjson/document.h>

#include <cstdio>
#include <utility>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/ctl/ctl_http.h"
#include "core/http/json_parse.h"
#include "core/reputation/reputation_config.h"
#include "core/reputation/reputation_query.h"
#include "core/reputation/reputation_service.h"
#include "core/reputation/reputation_snapshot.h"
#include "core/util/clock.h"
#include "core/util/file.h"

namespace kasi {

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

int fail(const std::string& why) {
    std::fprintf(stderr, "kasictl: reputation: %s\n", why.c_str());
    return 1;
}

std::string query_string(const Pairs& kv) {
    std::string q;
    for (const auto& [k, v] : kv) {
        q += q.empty() ? "?" : "&";
        q += k + "=";
        for (unsigned char c : v) {
            if (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':')
                q += char(c);
            else
                q += fmt::format("%{:02X}", unsigned(c));
        }
    }
    return q;
}

// The same from the snapshot on disk.
bool read_offline(const std::string& dir, const Settings& s, const RepQuery& q, std::string& out,
                  std::string& err) {
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    auto rc = ReputationConfig::load(cfg, s.queue_dir, d);
    std::string text;
    if (!read_file_capped(rc->snapshot, size_t(1) << 31, text, err)) {
        err = rc->snapshot + ": " + err + " (kasi is not running and there is no snapshot)";
        return false;
    }
    ReputationMatrix m(SIZE_MAX);
    SnapshotRead st;
    if (!read_reputation_snapshot(text, m, now_ms() / 1000, st, err)) {
        err = rc->snapshot + ": " + err;
        return false;
    }
    out = reputation_json(m, q.filter, q.limit, rc->weights, now_ms() / 1000);
    std::fprintf(stderr, "kasictl: kasi is not running; from %s\n", rc->snapshot.c_str());
    return true;
}

std::string cell(const rapidjson::Value& row, const char* k) {
    if (!row.HasMember(k) || !row[k].IsString()) return "?";
    std::string v = row[k].GetString();
    return v.empty() ? "*" : v;
}

uint64_t num(const rapidjson::Value& row, const char* k) {
    return row.HasMember(k) && row[k].IsUint64() ? row[k].GetUint64() : 0;
}

// The class with the most failures (deferred, bounced, async), "-" without any.
std::string top_class(const rapidjson::Value& row) {
    std::string best = "-";
    uint64_t most = 0;
    if (!row.HasMember("classes") || !row["classes"].IsObject()) return best;
    for (const auto& o : row["classes"].GetObject()) {
        if (!o.value.IsObject()) continue;
        for (const auto& c : o.value.GetObject())
            if (c.value.IsUint64() && c.value.GetUint64() > most) {
                most = c.value.GetUint64();
                best = fmt::format("{} {}", c.name.GetString(), most);
            }
    }
    return best;
}

std::string pct(uint64_t n, uint64_t of) {
    return of ? fmt::format("{:.1f}", 100.0 * double(n) / double(of)) : "-";
}

int print_table(const std::string& json) {
    rapidjson::Document doc;
    std::string err;
    if (!parse_json(doc, json, JsonLimits{}, err) || !doc.IsObject() || !doc.HasMember("rows") ||
        !doc["rows"].IsArray())
        return fail("an answer that is not the matrix: " + err);
    std::printf("%-16s %-24s %-12s %-10s %8s %6s %6s %6s %6s %6s %6s  %s\n", "SOURCE", "DOMAIN",
                "PROVIDER", "TENANT", "ATTEMPTS", "DELIV%", "DEFER%", "BOUNC%", "ASYNC", "COMPL",
                "SCORE", "TOP FAILURE CLASS");
    for (const auto& row : doc["rows"].GetArray()) {
        uint64_t a = num(row, "attempts");
        double score =
            row.HasMember("score") && row["score"].IsNumber() ? row["score"].GetDouble() : 0;
        std::printf("%-16s %-24s %-12s %-10s %8llu %6s %6s %6s %6llu %6llu %6.1f  %s\n",
                    cell(row, "source").c_str(), cell(row, "domain").c_str(),
                    cell(row, "provider").c_str(), cell(row, "tenant").c_str(),
                    (unsigned long long)a, pct(num(row, "delivered"), a).c_str(),
                    pct(num(row, "deferred"), a).c_str(), pct(num(row, "bounced"), a).c_str(),
                    (unsigned long long)num(row, "async_bounce"),
                    (unsigned long long)num(row, "complaint"), score, top_class(row).c_str());
    }
    uint64_t cells =
        doc.HasMember("cells") && doc["cells"].IsUint64() ? doc["cells"].GetUint64() : 0;
    std::printf(
        "%zu rows of %llu cells (window %llus; * = any)\n", size_t(doc["rows"].Size()),
        (unsigned long long)cells,
        (unsigned long long)(doc.HasMember("window_seconds") && doc["window_seconds"].IsUint64()
                                 ? doc["window_seconds"].GetUint64()
                                 : 0));
    return 0;
}

}  // namespace

int ctl_reputation(const std::string& dir, const std::vector<std::string>& args) {
    Pairs kv;
    bool json = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--json") {
            json = true;
        } else if (a == "--rollups") {
            kv.emplace_back("rollups", "true");
        } else if (a == "--source" || a == "--domain" || a == "--provider" || a == "--tenant" ||
                   a == "--limit") {
            if (i + 1 >= args.size()) return fail(a + " needs a value");
            kv.emplace_back(a.substr(2), args[++i]);
        } else {
            return fail("unknown word '" + a +
                        "' (--source, --domain, --provider, --tenant, --rollups, --limit, --json)");
        }
    }
    RepQuery q;
    std::string err;
    if (!parse_rep_query(kv, q, err)) return fail(err);
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    Settings s = load_settings(cfg, dir, d);
    std::string line = "reputation";
    for (const auto& [k, v] : kv) line += " " + k + "=" + v;
    auto answer =
        ctl_ask_json(dir, s.queue_dir, "/api/v1/admin/reputation" + query_string(kv), line, err);
    std::string body;
    if (answer && answer->empty()) return fail(err);
    if (answer)
        body = *answer;
    else if (!read_offline(dir, s, q, body, err))
        return fail(err);
    if (json) {
        std::printf("%s\n", body.c_str());
        return 0;
    }
    return print_table(body);
}

}  // namespace kasi
