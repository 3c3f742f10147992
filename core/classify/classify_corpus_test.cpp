// The corpus measurement: every reply line of test/data/smtp-replies/replies.tsv (real
// replies from sisimai's public bounce corpus, with the reason sisimai's tests assert)
// through the shipped rules. It prints the figure, the misses and a table per provider,
// and fails below 97%. The rules are general (docs/bounces.md): nothing in rules/ keys
// on a row of this file, and a part of the corpus is held back to check that.
// readings.tsv holds replies whose whole reading (reason, class, hard, scope) later stages
// act on: shaping slows down on rate_limited, backs off harder on reputation_block, and
// suppression suppresses a hard bounce. Each of its rows must read exactly as written.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/classify/classifier.h"
#include "core/util/strings.h"

using namespace kasi;

namespace {

struct Row {
    std::string provider, code, status, text, expected, host, command;
};

// One line of a TSV file, split at every tab (empty fields kept).
std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
        f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    return f;
}

// The rows of replies.tsv (a header line, then tab-separated columns).
std::vector<Row> read_rows(const std::string& path) {
    std::ifstream in(path);
    std::vector<Row> rows;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::vector<std::string> f = split_tabs(line);
        if (f.size() >= 7) rows.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6]});
    }
    return rows;
}

Classification run(const Classifier& c, const Row& r, std::string_view status) {
    ClassifyInput in;
    unsigned long long code = 0;
    if (parse_u64(r.code, code) && code < 1000) in.code = int(code);
    in.enhanced = status;
    in.text = r.text;
    in.remote_host = r.host;
    in.command = r.command;
    return c.classify(in);
}

bool pseudo_status(const std::string& s) {
    return s.size() == 7 && s.substr(1, 4) == ".0.9";
}

}  // namespace

TEST_CASE("corpus: sisimai's reply lines get sisimai's reasons", "[classify][corpus]") {
    std::string err;
    auto c = Classifier::load(ClassifierSources{KASI_SOURCE_ROOT "/rules", {}}, err);
    REQUIRE(c);
    auto rows = read_rows(KASI_SOURCE_ROOT "/test/data/smtp-replies/replies.tsv");
    REQUIRE(rows.size() > 300);
    std::map<std::string, std::pair<int, int>> by_provider;  // hits, rows
    int hits = 0, hits_without_pseudo = 0;
    std::printf("misses (expected -> got, rule | provider code status command | text):\n");
    for (const auto& r : rows) {
        auto got = run(*c, r, r.status);
        bool ok = got.reason == r.expected;
        hits += ok;
        auto& p = by_provider[r.provider];
        p.first += ok;
        ++p.second;
        if (!ok)
            std::printf("  %s -> %s, %s | %s %s %s %s | %.160s\n", r.expected.c_str(),
                        got.reason.c_str(), got.rule.c_str(), r.provider.c_str(), r.code.c_str(),
                        r.status.c_str(), r.command.c_str(), r.text.c_str());
        hits_without_pseudo +=
            run(*c, r, pseudo_status(r.status) ? "" : r.status).reason == r.expected;
    }
    double share = double(hits) / double(rows.size());
    std::printf("\ncorpus: %d of %zu reply lines get the expected reason (%.1f%%)\n", hits,
                rows.size(), 100 * share);
    std::printf("without sisimai's X.0.9NN pseudo status codes: %d of %zu (%.1f%%)\n",
                hits_without_pseudo, rows.size(), 100.0 * hits_without_pseudo / rows.size());
    std::printf("\n| provider | lines | expected reason | misses |\n|---|---|---|---|\n");
    for (const auto& [name, p] : by_provider)
        std::printf("| %s | %d | %d | %d |\n", name.c_str(), p.second, p.first, p.second - p.first);
    CHECK(share >= 0.97);
}

TEST_CASE("corpus: hard bounces are sisimai's, given sisimai's reason", "[classify][corpus]") {
    // bounces-expected.tsv: file, index, recipient, status, reason, replycode, hardbounce
    std::string err;
    auto c = Classifier::load(ClassifierSources{KASI_SOURCE_ROOT "/rules", {}}, err);
    REQUIRE(c);
    std::ifstream in(KASI_SOURCE_ROOT "/test/data/smtp-replies/bounces-expected.tsv");
    std::string line;
    std::getline(in, line);
    int rows = 0, same = 0;
    while (std::getline(in, line)) {
        std::vector<std::string> f = split_tabs(line);
        if (f.size() < 7) continue;
        unsigned long long code = 0;
        parse_u64(f[5], code);
        bool hard = c->for_reason(f[4], int(code), f[3]).hard;
        ++rows;
        if (hard == (f[6] == "true")) {
            ++same;
            continue;
        }
        std::printf("  hard differs: %s %s %s sisimai %s\n", f[4].c_str(), f[3].c_str(),
                    f[5].c_str(), f[6].c_str());
    }
    std::printf("hard/soft as sisimai says for %d of %d bounces\n", same, rows);
    REQUIRE(rows > 300);
    CHECK(same == rows);
}

TEST_CASE("readings: replies shaping and suppression act on read as written", "[classify]") {
    // readings.tsv: code, status, text, host, command, reason, class, hard|soft, scope, note
    std::string err;
    auto c = Classifier::load(ClassifierSources{KASI_SOURCE_ROOT "/rules", {}}, err);
    REQUIRE(c);
    std::ifstream in(KASI_SOURCE_ROOT "/test/data/smtp-replies/readings.tsv");
    std::string line;
    std::getline(in, line);  // header
    int rows = 0;
    while (std::getline(in, line)) {
        std::vector<std::string> f = split_tabs(line);
        REQUIRE(f.size() == 10);
        ++rows;
        Row r{"", f[0], f[1], f[2], f[5], f[3], f[4]};
        auto got = run(*c, r, r.status);
        INFO(f[9] << " | " << f[2] << " | rule " << got.rule);
        CHECK(got.reason == f[5]);
        CHECK(got.cls == f[6]);
        CHECK((got.hard ? "hard" : "soft") == f[7]);
        CHECK(scope_name(got.scope) == f[8]);
    }
    CHECK(rows >= 20);
}
