// CSV import and export of suppressions: a round trip through a file, the tolerance the
// importer promises, and bad rows reported by line.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "core/suppression/suppression_csv.h"
#include "core/suppression/suppression_store.h"
#include "core/util/clock.h"
#include "test/unit/temp_dir.h"

using namespace kasi;
namespace fs = std::filesystem;

namespace {

using kasi::test::TempDir;

std::unique_ptr<SuppressionStore> must_open(const std::string& dir) {
    SuppressionOptions o;
    o.background = false;
    std::string err;
    auto s = SuppressionStore::open(dir, o, err);
    INFO(err);
    REQUIRE(s);
    return s;
}

struct Parsed {
    std::vector<SuppressionEntry> entries;
    std::vector<CsvProblem> problems;
    size_t rows = 0;
};

// Feeds `text` in pieces of `piece` bytes (0: all at once).
Parsed parse(std::string_view text, size_t piece = 0) {
    Parsed p;
    SuppressionCsvReader r([&](SuppressionEntry&& e) { p.entries.push_back(std::move(e)); },
                           [&](CsvProblem&& pr) { p.problems.push_back(std::move(pr)); });
    if (piece == 0) piece = text.size() + 1;
    for (size_t i = 0; i < text.size(); i += piece) r.feed(text.substr(i, piece));
    r.finish();
    p.rows = r.rows();
    return p;
}

std::string problems_text(const Parsed& p) {
    std::string s;
    for (const auto& pr : p.problems) s += fmt::format("{}: {}\n", pr.line, pr.message);
    return s;
}

std::vector<SuppressionEntry> all(const SuppressionStore& s) {
    SuppressionQuery q;
    q.limit = 100000;
    auto v = s.list(q).entries;
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        return std::tie(a.scope, a.address) < std::tie(b.scope, b.address);
    });
    return v;
}

}  // namespace

TEST_CASE("suppression CSV: export and import round-trip every live entry") {
    TempDir a, b;
    int64_t now = now_ms() / 1000;
    auto src = must_open(a.path);
    std::vector<SuppressionEntry> es;
    for (int i = 0; i < 300; ++i) {
        SuppressionEntry e;
        e.address = fmt::format("user{}@example.com", i);
        e.scope = i % 3 == 0 ? "" : fmt::format("tenant:t{}", i % 3);
        e.reason = all_suppression_reasons[size_t(i) % 6];
        e.created = 1700000000 + i;
        e.expires = i % 7 == 0 ? now + 86400 : 0;
        e.event = i % 2 ? fmt::format("{:08X}-AAAA-BBBB-CCCC-{:012X}.{}", i, i, i % 4) : "";
        es.push_back(e);
    }
    SuppressionEntry odd;  // every field that needs quoting
    odd.address = "o\"neil,x@example.com";
    odd.scope = "tenant:a, \"b\"";
    odd.event = " spaced ";
    odd.created = 1700000000;
    es.push_back(odd);
    std::string err;
    REQUIRE(src->add(es, err));
    SuppressionEntry gone = es[1];
    gone.address = "expiring@example.com";
    gone.created = now;
    gone.expires = now + 5;
    REQUIRE(src->add({gone}, err));

    std::stringstream csv;
    CHECK(export_suppression_csv(*src, csv, now + 10) == es.size());  // not the expired one
    std::string text = csv.str();
    CHECK(text.rfind("address,scope,reason,created,expires,event\r\n", 0) == 0);
    CHECK(text.find("\"o\"\"neil,x@example.com\",\"tenant:a, \"\"b\"\"\"") != std::string::npos);
    CHECK(text.find("expiring@") == std::string::npos);

    auto dst = must_open(b.path);
    CsvImportResult res;
    REQUIRE(import_suppression_csv(*dst, csv, res, err));
    INFO(err);
    CHECK(res.rows == es.size());
    CHECK(res.imported == es.size());
    CHECK(res.problem_count == 0);
    auto want = all(*src);
    want.erase(std::remove_if(want.begin(), want.end(),
                              [](const auto& e) { return e.address == "expiring@example.com"; }),
               want.end());
    CHECK(all(*dst) == want);
}

TEST_CASE("suppression CSV: no header, CRLF, quotes, spaces, blank lines, a BOM") {
    std::string text =
        "\xEF\xBB\xBF"
        "Alice@Example.com,tenant:x,complaint,1700000000,0,ev-1\r\n"
        "\r\n"
        "  bob@example.com , , unsubscribe ,  ,  , \r\n"
        "\n"
        "\"carol@example.com\",\"domain:a,b\",\"manual\",\"1700000001\",\"1900000000\",\"say "
        "\"\"hi\"\"\"\n"
        "dave@example.com\n"
        "erin@example.com";  // no final newline
    for (size_t piece : {0, 1, 2, 3, 7}) {
        auto p = parse(text, piece);
        INFO(problems_text(p));
        CHECK(p.problems.empty());
        REQUIRE(p.entries.size() == 5);
        CHECK(p.rows == 5);
        CHECK(p.entries[0].address == "alice@example.com");
        CHECK(p.entries[0].scope == "tenant:x");
        CHECK(p.entries[0].reason == SuppressionReason::complaint);
        CHECK(p.entries[0].created == 1700000000);
        CHECK(p.entries[0].event == "ev-1");
        CHECK(p.entries[1].address == "bob@example.com");
        CHECK(p.entries[1].scope.empty());
        CHECK(p.entries[1].reason == SuppressionReason::unsubscribe);
        CHECK(p.entries[1].created == 0);
        CHECK(p.entries[2].scope == "domain:a,b");
        CHECK(p.entries[2].expires == 1900000000);
        CHECK(p.entries[2].event == "say \"hi\"");
        CHECK(p.entries[3].reason == SuppressionReason::import);  // the default
        CHECK(p.entries[4].address == "erin@example.com");
    }
}

TEST_CASE("suppression CSV: a header may reorder columns; unknown ones are ignored") {
    auto p = parse(
        "Reason,ADDRESS,list_id\n"
        "hard_bounce,x@example.com,17\n"
        "manual,y@example.com\n");
    REQUIRE(p.entries.size() == 2);
    CHECK(p.entries[0].address == "x@example.com");
    CHECK(p.entries[0].reason == SuppressionReason::hard_bounce);
    CHECK(p.entries[1].reason == SuppressionReason::manual);
    REQUIRE(p.problems.size() == 1);
    CHECK(p.problems[0].line == 1);
    CHECK(p.problems[0].message.find("list_id") != std::string::npos);
}

TEST_CASE("suppression CSV: bad rows are reported with their line and skipped") {
    std::string text =
        "address,scope,reason,created,expires,event\n"  // 1
        "ok1@example.com\n"                             // 2
        "bad-reason@example.com,,bounced\n"             // 3
        "bad-time@example.com,,,yesterday\n"            // 4
        "too-many@example.com,,,,,,extra\n"             // 5
        ",tenant:x\n"                                   // 6
        "not an address\n"                              // 7
        "\"quoted\"junk@example.com\n"                  // 8
        "\"multi\nline@example.com\"\n"                 // 9-10: a newline in the address
        "ok2@example.com,,,,99999999999\n"              // 11: expires beyond 32 bits
        "ok3@example.com\n"                             // 12
        "\"unterminated@example.com\n";                 // 13
    auto p = parse(text);
    INFO(problems_text(p));
    REQUIRE(p.entries.size() == 2);
    CHECK(p.entries[0].address == "ok1@example.com");
    CHECK(p.entries[1].address == "ok3@example.com");
    CHECK(p.rows == 11);
    std::vector<size_t> lines;
    for (const auto& pr : p.problems) lines.push_back(pr.line);
    CHECK(lines == std::vector<size_t>{3, 4, 5, 6, 7, 8, 9, 11, 13});
    CHECK(p.problems[0].message.find("unknown reason 'bounced'") != std::string::npos);
    CHECK(p.problems[1].message.find("not unix seconds") != std::string::npos);
    CHECK(p.problems[2].message.find("7 fields") != std::string::npos);
    CHECK(p.problems[3].message == "no address");
    CHECK(p.problems[5].message.find("after a closing quote") != std::string::npos);
    CHECK(p.problems[8].message.find("not closed") != std::string::npos);
}

TEST_CASE("suppression CSV: import into a store counts rows, imports and problems") {
    TempDir d;
    auto s = must_open(d.path);
    std::string text = "a@example.com,,hard_bounce\nnope\nb@example.com,tenant:z\n";
    std::istringstream in(text);
    CsvImportResult res;
    std::string err;
    REQUIRE(import_suppression_csv(*s, in, res, err));
    CHECK(res.rows == 3);
    CHECK(res.imported == 2);
    CHECK(res.problem_count == 1);
    REQUIRE(res.problems.size() == 1);
    CHECK(res.problems[0].line == 2);
    CHECK(s->find("", "a@example.com", 0)->reason == SuppressionReason::hard_bounce);
    CHECK(s->find("tenant:z", "b@example.com", 0)->reason == SuppressionReason::import);
    auto created = s->find("", "a@example.com", 0)->created;
    CHECK(std::abs(created - now_ms() / 1000) <= 2);  // no created column: now
}

TEST_CASE("suppression CSV: arbitrary bytes never crash the reader") {
    std::mt19937 rng(1234);
    const std::string alphabet =
        "a@b.,\"\r\n \t\x01\xff"
        "0123456789xyz";
    size_t entries = 0, problems = 0;
    for (int round = 0; round < 3000; ++round) {
        std::string text;
        size_t n = rng() % 200;
        for (size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
        auto p = parse(text, 1 + rng() % 5);
        auto whole = parse(text);  // the same however it is fed
        CHECK(p.entries == whole.entries);
        CHECK(p.problems.size() == whole.problems.size());
        for (const auto& e : p.entries) {
            std::string err;
            SuppressionEntry copy = e;
            CHECK(validate_entry(copy, err));  // what comes out is always storable
        }
        entries += p.entries.size();
        problems += p.problems.size();
    }
    CHECK(entries > 0);
    CHECK(problems > 0);
}
