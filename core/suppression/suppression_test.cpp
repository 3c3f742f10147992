// The suppression store: entries and their rules, the compact table, the journal's
// recovery (torn tails, garbage, damage in the middle, kill -9), group commit under
// concurrent writers, and compaction. Real files in a temporary directory.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/suppression/suppression_arena.h"
#include "core/suppression/suppression_store.h"
#include "core/suppression/suppression_table.h"
#include "core/util/clock.h"
#include "core/util/crc32c.h"
#include "test/unit/temp_dir.h"

using namespace kasi;
namespace fs = std::filesystem;

namespace {

using kasi::test::TempDir;

constexpr int64_t T0 = 1700000000;  // a fixed "created" in the past

SuppressionEntry entry(std::string address, std::string scope = "",
                       SuppressionReason reason = SuppressionReason::hard_bounce,
                       int64_t created = T0, int64_t expires = 0, std::string event = "") {
    SuppressionEntry e;
    e.address = std::move(address);
    e.scope = std::move(scope);
    e.reason = reason;
    e.created = created;
    e.expires = expires;
    e.event = std::move(event);
    return e;
}

SuppressionOptions quiet() {  // no maintenance thread: tests decide when to compact
    SuppressionOptions o;
    o.background = false;
    o.expiry_grace_s = 0;  // expired entries may go at once
    return o;
}

std::unique_ptr<SuppressionStore> must_open(const std::string& dir,
                                            SuppressionOptions o = quiet()) {
    std::string err;
    auto s = SuppressionStore::open(dir, std::move(o), err);
    INFO(err);
    REQUIRE(s);
    return s;
}

void must_add(SuppressionStore& s, const std::vector<SuppressionEntry>& es) {
    std::string err;
    INFO(err);
    REQUIRE(s.add(es, err));
}

// Every entry, sorted: for comparing whole states.
std::vector<SuppressionEntry> all(const SuppressionStore& s, int64_t now = 0) {
    std::vector<SuppressionEntry> out;
    SuppressionQuery q;
    q.limit = 1000;
    q.now = now;
    for (;;) {
        auto page = s.list(q);
        out.insert(out.end(), page.entries.begin(), page.entries.end());
        if (page.next == 0) break;
        q.after = page.next;
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return std::tie(a.scope, a.address) < std::tie(b.scope, b.address);
    });
    return out;
}

int64_t now_s() {
    return now_ms() / 1000;
}

void wait_until(int64_t t) {  // unix seconds
    while (now_s() < t) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

uint64_t file_size(const std::string& p) {
    return fs::file_size(p);
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("suppression reasons have names both ways") {
    for (auto r : all_suppression_reasons) CHECK(parse_reason(reason_name(r)) == r);
    CHECK(reason_name(SuppressionReason::hard_bounce) == "hard_bounce");
    CHECK(reason_name(SuppressionReason::soft_bounce) == "soft_bounce");
    CHECK(parse_reason("Complaint") == SuppressionReason::complaint);
    CHECK_FALSE(parse_reason("bounce"));
    CHECK_FALSE(parse_reason(""));
}

TEST_CASE("suppression entries: the address is trimmed and lower-cased, fields checked") {
    CHECK(normalize_address("  John.Doe@Example.COM\t") == "john.doe@example.com");
    auto e = entry(" Ünïcode.X@Example.org ");
    std::string err;
    REQUIRE(validate_entry(e, err));
    CHECK(e.address == "Ünïcode.x@example.org");  // only ASCII letters fold
    for (std::string bad :
         std::vector<std::string>{"", "no-at-sign", "@example.com", "user@", "a b@example.com",
                                  "a\x01@example.com", std::string(600, 'a') + "@x.org"}) {
        auto b = entry(bad);
        CHECK_FALSE(validate_entry(b, err));
    }
    auto long_event = entry("a@b.c", "", SuppressionReason::manual, T0, 0, std::string(65, 'e'));
    CHECK_FALSE(validate_entry(long_event, err));
    auto neg = entry("a@b.c", "", SuppressionReason::manual, -1);
    CHECK_FALSE(validate_entry(neg, err));
    auto late = entry("a@b.c", "", SuppressionReason::manual, T0, int64_t(1) << 33);
    CHECK_FALSE(validate_entry(late, err));
    auto scope = entry("a@b.c", std::string(256, 's'));
    CHECK_FALSE(validate_entry(scope, err));
}

TEST_CASE("suppression arena: keys and event ids round-trip, Kasi's ids packed") {
    struct Case {
        std::string event;
        size_t event_size;  // encoded, header byte included
    };
    std::vector<Case> cases = {
        {"", 1},
        {"0F8E2A4C-1B3D-4E5F-8A9B-0C1D2E3F4A5B.12", 1 + 16 + 3},
        {"0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b", 1 + 16},
        {"01234567-0123-0123-0123-012345678901", 1 + 16},
        {"0F8E2A4C-1b3d-4E5F-8A9B-0C1D2E3F4A5B", 1 + 36},  // mixed case: raw
        {"0F8E2A4C-1B3D-4E5F-8A9B-0C1D2E3F4A5", 1 + 35},   // too short: raw
        {"evt:complaint/77", 1 + 16},
        {std::string(64, 'z'), 1 + 64},
    };
    const std::string long_local(200, 'a');  // a two-byte length
    for (TextKey key :
         {TextKey{0, 0, "someone"}, TextKey{300, 70000, "x"}, TextKey{1, 2, long_local}}) {
        auto varint_size = [](uint64_t v) { return v < 128 ? 1 : v < 16384 ? 2 : 3; };
        size_t key_size = size_t(varint_size(key.scope) + varint_size(key.domain) +
                                 varint_size(key.local.size())) +
                          key.local.size();
        for (const auto& c : cases) {
            std::string text;
            encode_text(text, key, c.event);
            auto* p = reinterpret_cast<const uint8_t*>(text.data());
            DecodedText d = decode_text(p);
            CHECK(d.key == key);
            CHECK(d.size == text.size());
            CHECK(text.size() == key_size + c.event_size);
            CHECK(decode_event(p) == c.event);
        }
    }
}

TEST_CASE("suppression interner: ids are dense and stable, names come back") {
    StringInterner in(99);
    std::vector<std::string> names;
    for (int i = 0; i < 5000; ++i) names.push_back(fmt::format("company{}.example", i));
    for (size_t i = 0; i < names.size(); ++i) CHECK(in.intern(names[i]) == i);
    CHECK(in.intern("company17.example") == 17);  // again: the same id
    CHECK(in.size() == names.size());
    for (size_t i = 0; i < names.size(); ++i) {
        CHECK(in.name(uint32_t(i)) == names[i]);
        CHECK(in.find(names[i]) == i);
    }
    CHECK_FALSE(in.find("company5000.example"));
    CHECK_FALSE(in.find(""));
    CHECK(in.intern("") == names.size());  // the empty string is a value too (global scope)
    CHECK(in.find("") == names.size());
}

TEST_CASE("suppression table: random adds and removes agree with a std::map") {
    SuppressionTable t;
    std::map<std::pair<std::string, std::string>, SuppressionEntry> ref;
    std::mt19937 rng(7);
    const std::vector<std::string> scopes = {"", "tenant:a", "domain:b.example"};
    for (int i = 0; i < 60000; ++i) {
        auto k = rng() % 3000;
        auto e = entry(fmt::format("user{}@d{}.example", k, k % 7), scopes[k % 3],
                       all_suppression_reasons[rng() % 6], T0 + int64_t(rng() % 1000), 0,
                       rng() % 2 ? "" : fmt::format("E{}", i));
        auto key = std::make_pair(e.scope, e.address);
        if (rng() % 3 == 0) {
            CHECK(t.erase(e.scope, e.address) == (ref.erase(key) == 1));
        } else {
            auto it = ref.find(key);
            bool replaces = it == ref.end() || it->second.created <= e.created;
            CHECK(t.upsert(e, T0 + 2000) == replaces);
            if (replaces) ref[key] = e;
        }
    }
    CHECK(t.size() == ref.size());
    for (const auto& [key, e] : ref) {
        auto sid = t.scope_id(key.first);
        REQUIRE(sid);
        auto rec = t.find(*sid, key.second);
        REQUIRE(rec);
        CHECK(t.entry(*rec) == e);
    }
    for (int k = 0; k < 3000; ++k) {  // and what was removed is gone
        std::string a = fmt::format("user{}@d{}.example", k, k % 7);
        auto sid = t.scope_id(scopes[k % 3]);
        bool in_ref = ref.count({scopes[k % 3], a}) == 1;
        CHECK(bool(sid && t.find(*sid, a)) == in_ref);
    }
    uint64_t sum = 0;
    for (auto r : all_suppression_reasons) sum += t.count(r);
    CHECK(sum == ref.size());
}

TEST_CASE("suppression store: add, find, check scopes, replace, remove") {
    TempDir d;
    auto s = must_open(d.path);
    must_add(*s, {entry("Bounced@Example.com"),
                  entry("tenant-only@example.com", "tenant:acme", SuppressionReason::complaint),
                  entry("dom@example.com", "domain:news.acme.example",
                        SuppressionReason::unsubscribe, T0, 0, "EVT-1")});
    CHECK(s->size() == 3);
    int64_t now = T0 + 10;

    auto g = s->find("", "  bounced@EXAMPLE.com ", now);  // local part: case-insensitive
    REQUIRE(g);
    CHECK(g->address == "bounced@example.com");
    CHECK(g->reason == SuppressionReason::hard_bounce);
    CHECK(g->created == T0);

    CHECK_FALSE(s->find("", "tenant-only@example.com", now));  // scopes are separate
    CHECK(s->find("tenant:acme", "tenant-only@example.com", now));
    CHECK_FALSE(s->find("tenant:other", "tenant-only@example.com", now));

    // check(): global first, then the given scopes in order.
    auto c = s->check("dom@example.com", {"tenant:acme", "domain:news.acme.example"}, now);
    REQUIRE(c);
    CHECK(c->scope == "domain:news.acme.example");
    CHECK(c->event == "EVT-1");
    CHECK_FALSE(s->check("dom@example.com", {"tenant:acme"}, now));
    CHECK(s->check("bounced@example.com", {"tenant:acme"}, now)->scope.empty());
    must_add(*s, {entry("dom@example.com", "tenant:acme", SuppressionReason::manual)});
    CHECK(s->check("dom@example.com", {"tenant:acme", "domain:news.acme.example"}, now)->scope ==
          "tenant:acme");
    CHECK_FALSE(s->check("nobody@example.com", {"tenant:acme"}, now));

    // Replace: a later `created` wins, an older one does not.
    must_add(*s, {entry("bounced@example.com", "", SuppressionReason::complaint, T0 + 5)});
    CHECK(s->find("", "bounced@example.com", now)->reason == SuppressionReason::complaint);
    must_add(*s, {entry("bounced@example.com", "", SuppressionReason::manual, T0 + 1)});
    CHECK(s->find("", "bounced@example.com", now)->reason == SuppressionReason::complaint);
    CHECK(s->size() == 4);
    CHECK(s->count(SuppressionReason::complaint) == 2);
    CHECK(s->count(SuppressionReason::hard_bounce) == 0);

    std::string err;
    REQUIRE(s->remove("", {"BOUNCED@example.com", "never-there@example.com"}, err));
    CHECK_FALSE(s->find("", "bounced@example.com", now));
    CHECK(s->size() == 3);
    CHECK(s->count(SuppressionReason::complaint) == 1);
    // After a removal an older entry may come back.
    must_add(*s, {entry("bounced@example.com", "", SuppressionReason::manual, T0 - 100)});
    CHECK(s->find("", "bounced@example.com", now)->reason == SuppressionReason::manual);
}

TEST_CASE("suppression store: expiry, created defaulting to now, and invalid batches") {
    TempDir d;
    auto s = must_open(d.path);
    int64_t now = now_ms() / 1000;
    must_add(*s, {entry("soft@example.com", "", SuppressionReason::soft_bounce, 0, now + 3600)});
    auto e = s->find("", "soft@example.com", now);
    REQUIRE(e);
    CHECK(std::abs(e->created - now) <= 2);  // 0 became "now"
    CHECK(s->find("", "soft@example.com", now + 3599));
    CHECK_FALSE(s->find("", "soft@example.com", now + 3600));  // expired entries never match
    CHECK_FALSE(s->check("soft@example.com", std::vector<std::string>{}, now + 7200));

    // An add that is already over by the time it is written removes instead.
    must_add(*s, {entry("soft@example.com", "", SuppressionReason::soft_bounce, now + 5, 1000)});
    CHECK_FALSE(s->find("", "soft@example.com", 0));
    CHECK(s->size() == 0);

    // One bad entry: nothing of the batch is written.
    auto before = file_size(s->journal_path());
    std::string err;
    CHECK_FALSE(s->add({entry("good@example.com"), entry("not an address")}, err));
    CHECK(err.find("entry 2") != std::string::npos);
    CHECK(s->size() == 0);
    CHECK(file_size(s->journal_path()) == before);
    CHECK_FALSE(s->remove("", {"ok@example.com", "@bad"}, err));
    CHECK(file_size(s->journal_path()) == before);
}

TEST_CASE("suppression store: expired entries leave memory at a sweep, after the grace") {
    TempDir d, d2;
    auto s = must_open(d.path);  // no grace
    SuppressionOptions o;
    o.background = false;
    auto g = must_open(d2.path, o);  // the default grace of an hour
    int64_t now = now_s();
    std::vector<SuppressionEntry> es;
    for (int i = 0; i < 50; ++i)
        es.push_back(entry(fmt::format("e{}@example.com", i), "", SuppressionReason::soft_bounce,
                           now, now + 2));
    es.push_back(entry("stays@example.com"));
    must_add(*s, es);
    must_add(*g, es);
    CHECK(s->size() == 51);
    if (now_s() < now + 2) CHECK(s->sweep_expired() == 0);  // not yet
    CHECK(s->size() == 51);
    wait_until(now + 2);
    CHECK(s->sweep_expired() == 50);
    CHECK(s->size() == 1);
    CHECK(s->count(SuppressionReason::soft_bounce) == 0);
    CHECK(s->find("", "stays@example.com", now_s()));
    CHECK(g->sweep_expired() == 0);  // within the grace: kept, never matching
    CHECK(g->size() == 51);
    CHECK_FALSE(g->find("", "e1@example.com", now_s()));
    must_add(*g,
             {entry("gone@example.com", "", SuppressionReason::soft_bounce, now - 10, now - 5)});
    CHECK_FALSE(g->find("", "gone@example.com", 0));  // expired when written: not stored
    CHECK(g->size() == 51);
}

TEST_CASE("suppression store: list pages through everything, with filters") {
    TempDir d;
    auto s = must_open(d.path);
    std::vector<SuppressionEntry> es;
    for (int i = 0; i < 1000; ++i)
        es.push_back(entry(fmt::format("u{}@example.com", i), i % 3 ? "tenant:t" : "",
                           all_suppression_reasons[size_t(i) % 6]));
    must_add(*s, es);
    std::string err;
    std::vector<std::string> gone;
    for (int i = 0; i < 1000; i += 10) gone.push_back(fmt::format("u{}@example.com", i));
    REQUIRE(s->remove("", gone, err));
    REQUIRE(s->remove("tenant:t", gone, err));

    std::set<std::string> seen;
    SuppressionQuery q;
    q.limit = 7;
    size_t pages = 0;
    for (;; ++pages) {
        auto page = s->list(q);
        CHECK(page.entries.size() <= 7);
        for (const auto& e : page.entries) CHECK(seen.insert(e.scope + "|" + e.address).second);
        if (page.next == 0) break;
        q.after = page.next;
    }
    CHECK(seen.size() == 900);
    CHECK(pages >= 900 / 7);

    q = SuppressionQuery{};
    q.limit = 5000;
    q.scope = "";
    auto global = s->list(q);
    CHECK(global.entries.size() == 300);  // i % 3 == 0, minus every 10th
    for (const auto& e : global.entries) CHECK(e.scope.empty());
    q.scope = "tenant:t";
    q.reason = SuppressionReason::complaint;
    auto complaints = s->list(q);
    size_t want = 0;  // i % 3 != 0, i % 6 == 1, i % 10 != 0
    for (int i = 0; i < 1000; ++i) want += i % 3 && i % 6 == 1 && i % 10;
    CHECK(complaints.entries.size() == want);
    for (const auto& e : complaints.entries) {
        CHECK(e.reason == SuppressionReason::complaint);
        CHECK(e.scope == "tenant:t");
    }
    q.scope = "tenant:unknown";
    CHECK(s->list(q).entries.empty());
}

TEST_CASE("suppression store: changes survive a reopen") {
    TempDir d;
    std::vector<SuppressionEntry> before;
    {
        auto s = must_open(d.path);
        must_add(*s, {entry("a@example.com", "", SuppressionReason::hard_bounce, T0, 0,
                            "0F8E2A4C-1B3D-4E5F-8A9B-0C1D2E3F4A5B.1"),
                      entry("b@example.com", "tenant:x", SuppressionReason::import),
                      entry("c@example.com", "domain:y.example", SuppressionReason::unsubscribe, T0,
                            4000000000, "evt-9")});
        must_add(*s, {entry("a@example.com", "", SuppressionReason::complaint, T0 + 9)});
        std::string err;
        REQUIRE(s->remove("tenant:x", {"b@example.com"}, err));
        before = all(*s);
        REQUIRE(before.size() == 2);
    }
    auto s = must_open(d.path);
    CHECK(all(*s) == before);
    CHECK(s->find("", "a@example.com", T0 + 10)->reason == SuppressionReason::complaint);
    CHECK(s->find("", "a@example.com", T0 + 10)->event.empty());
    CHECK(s->find("domain:y.example", "c@example.com", T0)->expires == 4000000000);
}

TEST_CASE("suppression store: one process owns a directory") {
    TempDir d;
    auto s = must_open(d.path);
    std::string err;
    CHECK_FALSE(SuppressionStore::open(d.path, quiet(), err));
    CHECK(err.find("in use") != std::string::npos);
}

namespace {

// Adds `n` entries one per call and returns the journal size after each.
std::vector<uint64_t> add_one_by_one(SuppressionStore& s, int n) {
    std::vector<uint64_t> sizes;
    for (int i = 0; i < n; ++i) {
        must_add(s, {entry(fmt::format("r{}@example.com", i))});
        sizes.push_back(file_size(s.journal_path()));
    }
    return sizes;
}

}  // namespace

TEST_CASE("suppression journal: a torn tail is cut at the last whole record, and logged") {
    TempDir d;
    std::vector<uint64_t> sizes;
    std::string path;
    {
        auto s = must_open(d.path);
        sizes = add_one_by_one(*s, 10);
        path = s->journal_path();
    }
    // The last record, cut in the middle: as a crash during its write leaves it.
    fs::resize_file(path, sizes[8] + (sizes[9] - sizes[8]) / 2);
    std::string logfile = d.path + "/log";
    REQUIRE(log::set_file(logfile));
    {
        auto s = must_open(d.path);
        CHECK(s->size() == 9);
        CHECK(s->find("", "r8@example.com", T0));
        CHECK_FALSE(s->find("", "r9@example.com", T0));
        CHECK(file_size(path) == sizes[8]);  // truncated
        must_add(*s, {entry("after@example.com")});
    }
    REQUIRE(log::set_file(""));
    std::string logged = slurp(logfile);
    CHECK(logged.find("torn tail") != std::string::npos);
    CHECK(logged.find(fmt::format("byte offset {}", sizes[8])) != std::string::npos);
    auto s = must_open(d.path);  // what was added after the repair is read back
    CHECK(s->size() == 10);
    CHECK(s->find("", "after@example.com", T0));
}

TEST_CASE("suppression journal: garbage appended is dropped, every record kept") {
    TempDir d;
    std::vector<uint64_t> sizes;
    std::string path;
    {
        auto s = must_open(d.path);
        sizes = add_one_by_one(*s, 20);
        path = s->journal_path();
    }
    std::mt19937 rng(42);
    for (size_t garbage : {1, 7, 100, 5000}) {
        {
            std::ofstream f(path, std::ios::app | std::ios::binary);
            for (size_t i = 0; i < garbage; ++i) f.put(char(rng()));
        }
        auto s = must_open(d.path);
        CHECK(s->size() == 20);
        CHECK(file_size(path) == sizes.back());
    }
    {  // zeros, as a file extended by a crash before its data reached the disk
        std::ofstream f(path, std::ios::app | std::ios::binary);
        f << std::string(8192, '\0');
    }
    auto s = must_open(d.path);
    CHECK(s->size() == 20);
    CHECK(file_size(path) == sizes.back());
}

TEST_CASE("suppression journal: damage in the middle fails the open with file and offset") {
    TempDir d;
    std::vector<uint64_t> sizes;
    std::string path;
    {
        auto s = must_open(d.path);
        sizes = add_one_by_one(*s, 10);
        path = s->journal_path();
    }
    {  // flip a byte inside record 5's payload
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(std::streamoff(sizes[4] + 12));
        f.put('\x7f');
    }
    std::string err;
    CHECK_FALSE(SuppressionStore::open(d.path, quiet(), err));
    CHECK(err.find(path) != std::string::npos);
    CHECK(err.find(fmt::format("byte offset {}", sizes[4])) != std::string::npos);
    CHECK(err.find(fmt::format("byte offset {}", sizes[5])) != std::string::npos);
    CHECK(file_size(path) == sizes.back());  // nothing was cut
}

TEST_CASE(
    "suppression journal: a foreign or newer file is refused; a headerless one starts empty") {
    TempDir d;
    std::string path = d.path + "/suppressions.journal";
    {
        std::ofstream f(path, std::ios::binary);
        f << "address,scope\nthis is not a journal\n";
    }
    std::string err;
    CHECK_FALSE(SuppressionStore::open(d.path, quiet(), err));
    CHECK(err.find("not a Kasi suppression journal") != std::string::npos);

    std::string h = journal_header();
    h[8] = 2;  // version 2, checksum not updated
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << h;
    }
    CHECK_FALSE(SuppressionStore::open(d.path, quiet(), err));
    CHECK(err.find("checksum") != std::string::npos);  // the CRC covers the version
    uint32_t crc = crc32c(0, h.data(), 12);
    for (int i = 0; i < 4; ++i) h[size_t(12 + i)] = char(crc >> (8 * i));
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << h;
    }
    CHECK_FALSE(SuppressionStore::open(d.path, quiet(), err));
    CHECK(err.find("format version 2") != std::string::npos);

    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << journal_header().substr(0, 5);  // a creation cut short
    }
    auto s = must_open(d.path);
    CHECK(s->size() == 0);
    CHECK(file_size(path) == journal_header_size);
}

// The child adds (and sometimes removes) entries from three threads and reports each
// acknowledged change on a pipe; the parent kills it at a random moment and reopens.
TEST_CASE("suppression store: every acknowledged change survives kill -9") {
    TempDir d;
    std::mt19937 rng(std::random_device{}());
    std::set<std::string> added, removing, removed;
    for (int round = 0; round < 4; ++round) {
        int p[2];
        REQUIRE(::pipe(p) == 0);
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(p[0]);
            std::string err;
            auto s = SuppressionStore::open(d.path, quiet(), err);
            if (!s) ::_exit(2);
            std::vector<std::thread> ts;
            for (int t = 0; t < 3; ++t)
                ts.emplace_back([&, t] {
                    std::string e;
                    auto say = [&](char what, const std::string& a) {
                        std::string line = what + (" " + a + "\n");
                        if (::write(p[1], line.data(), line.size()) != ssize_t(line.size()))
                            ::_exit(4);
                    };
                    for (int i = 0;; ++i) {
                        std::string a = fmt::format("k{}-{}-{}@crash.example", round, t, i);
                        if (!s->add({entry(a)}, e)) ::_exit(3);
                        say('A', a);
                        if (i % 5 == 4) {
                            std::string prev =
                                fmt::format("k{}-{}-{}@crash.example", round, t, i - 1);
                            say('T', prev);  // from here it may be gone
                            if (!s->remove("", {prev}, e)) ::_exit(3);
                            say('R', prev);
                        }
                    }
                });
            for (auto& t : ts) t.join();
            ::_exit(0);
        }
        ::close(p[1]);
        std::string got;
        auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(200 + rng() % 400);
        char buf[65536];
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd pfd{p[0], POLLIN, 0};
            if (::poll(&pfd, 1, 10) > 0) {
                ssize_t n = ::read(p[0], buf, sizeof buf);
                if (n <= 0) break;
                got.append(buf, size_t(n));
            }
        }
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        REQUIRE(WIFSIGNALED(status));  // it was still running, not failed
        for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
        ::close(p[0]);
        // Only whole lines: a line is written with one write(2), A and R after the change
        // returned, T before a removal starts.
        size_t pos = 0, round_adds = 0;
        for (size_t nl; (nl = got.find('\n', pos)) != std::string::npos; pos = nl + 1) {
            std::string line = got.substr(pos, nl - pos);
            (line[0] == 'A' ? added : line[0] == 'T' ? removing : removed).insert(line.substr(2));
            round_adds += line[0] == 'A';
        }
        CHECK(round_adds > 10);  // the child did work before it died
        auto s = must_open(d.path);
        size_t present = 0;
        for (const auto& a : added) {
            if (removing.count(a) == 0) {  // no removal begun: must be there
                INFO(a);
                CHECK(s->find("", a, T0));
                ++present;
            }
        }
        for (const auto& a : removed) {
            INFO(a);
            CHECK_FALSE(s->find("", a, T0));
        }
        CHECK(s->size() >= present);
    }
}

TEST_CASE("suppression store: concurrent writers share syncs; readers see every acknowledged add") {
    TempDir d;
    SuppressionOptions o = quiet();
    o.before_sync = [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); };
    auto s = must_open(d.path, o);
    constexpr int writers = 4, per_writer = 400;
    std::array<std::atomic<int>, writers> acked{};
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::atomic<long> misses{0}, lookups{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r)
        readers.emplace_back([&, r] {
            std::mt19937 rng{uint32_t(r) + 1};
            while (!done) {
                int w = int(rng() % writers);
                int n = acked[size_t(w)].load();
                if (n == 0) continue;
                int i = int(rng() % uint32_t(n));
                auto e = s->check(fmt::format("w{}-{}@example.com", w, i), {"tenant:x"}, T0);
                if (!e || e->address != fmt::format("w{}-{}@example.com", w, i)) ++misses;
                ++lookups;
            }
        });
    std::vector<std::thread> ws;
    for (int w = 0; w < writers; ++w)
        ws.emplace_back([&, w] {
            std::string err;
            for (int i = 0; i < per_writer; ++i) {
                auto e = entry(fmt::format("w{}-{}@example.com", w, i), i % 2 ? "tenant:x" : "");
                if (!s->add({e}, err)) ++failures;
                acked[size_t(w)] = i + 1;
            }
        });
    for (auto& t : ws) t.join();
    done = true;
    for (auto& t : readers) t.join();
    CHECK(failures == 0);
    CHECK(misses == 0);
    CHECK(lookups > 0);
    CHECK(s->size() == writers * per_writer);
    auto st = s->stats();
    CHECK(st.commits == writers * per_writer);
    CHECK(st.syncs < st.commits / 2);  // group commit: many adds per fdatasync
    CHECK(st.journal_records == writers * per_writer);
}

TEST_CASE("suppression store: compaction keeps the content and drops the rest") {
    TempDir d;
    std::vector<SuppressionEntry> expect;
    std::string path;
    int64_t now = now_s();
    {
        auto s = must_open(d.path);
        path = s->journal_path();
        std::vector<SuppressionEntry> es;
        for (int i = 0; i < 3000; ++i)
            es.push_back(entry(fmt::format("c{}@example.com", i), i % 2 ? "tenant:a" : "",
                               all_suppression_reasons[size_t(i) % 6], T0, 0,
                               fmt::format("{:08X}-0000-0000-0000-{:012X}.1", i, i)));
        must_add(*s, es);
        for (auto& e : es) e.created = T0 + 1, e.reason = SuppressionReason::manual;
        must_add(*s, es);  // every entry replaced once
        std::vector<std::string> gone;
        for (int i = 0; i < 3000; i += 2) gone.push_back(fmt::format("c{}@example.com", i));
        std::string err;
        REQUIRE(s->remove("", gone, err));
        must_add(*s,
                 {entry("short@example.com", "", SuppressionReason::soft_bounce, now, now + 2)});
        wait_until(now + 2);
        expect = all(*s, now + 2);
        REQUIRE(expect.size() == 1500);
        auto big = file_size(path);
        REQUIRE(s->compact(err));
        CHECK(file_size(path) < big / 3);
        auto st = s->stats();
        CHECK(st.compactions == 1);
        CHECK(st.journal_records == 1500);  // the expired entry is not written
        CHECK(st.journal_bytes == file_size(path));
        CHECK(all(*s) == expect);
        must_add(*s, {entry("after@example.com")});  // appends continue in the new file
        expect = all(*s);
    }
    CHECK_FALSE(fs::exists(path + ".compact"));
    auto s = must_open(d.path);
    CHECK(all(*s) == expect);
}

// Writers keep changing a small set of addresses (adds with random `created`, removes,
// soon-expiring entries) while compactions run; a reopen must give exactly the state the
// live store ended with.
TEST_CASE("suppression store: compaction under concurrent writers loses nothing") {
    TempDir d;
    std::vector<SuppressionEntry> live;
    {
        auto s = must_open(d.path);
        std::atomic<bool> stop{false};
        std::atomic<int> failures{0};
        std::vector<std::thread> ws;
        int64_t now = now_s();
        for (int w = 0; w < 3; ++w)
            ws.emplace_back([&, w] {
                std::mt19937 rng(uint32_t(w) + 1);
                std::string err;
                while (!stop) {
                    std::vector<SuppressionEntry> batch;
                    std::vector<std::string> gone;
                    for (int i = 0; i < 20; ++i) {
                        auto a = fmt::format("x{}@example.com", rng() % 500);
                        if (rng() % 4 == 0) {
                            gone.push_back(a);
                        } else {
                            int64_t exp = rng() % 5 == 0 ? now + 1 + int64_t(rng() % 2) : 0;
                            batch.push_back(entry(a, rng() % 2 ? "tenant:q" : "",
                                                  all_suppression_reasons[rng() % 6],
                                                  T0 + int64_t(rng() % 50), exp));
                        }
                    }
                    if (!s->add(batch, err)) ++failures;
                    if (!s->remove(rng() % 2 ? "tenant:q" : "", gone, err)) ++failures;
                }
            });
        std::string err;
        for (int c = 0; c < 15; ++c) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (!s->compact(err)) FAIL_CHECK(err);
        }
        stop = true;
        for (auto& t : ws) t.join();
        CHECK(failures == 0);
        CHECK(s->stats().compactions == 15);
        wait_until(now + 3);  // every expiring entry is over: both sides agree on them
        live = all(*s, now_s());
        CHECK(live.size() > 100);
    }
    auto s = must_open(d.path);
    CHECK(all(*s, now_s()) == live);
}

TEST_CASE("suppression store: the maintenance thread compacts a journal full of replacements") {
    TempDir d;
    SuppressionOptions o;
    o.compact_min_records = 1000;
    auto s = must_open(d.path, o);
    for (int round = 0; round < 25; ++round) {
        std::vector<SuppressionEntry> es;
        for (int i = 0; i < 100; ++i)
            es.push_back(entry(fmt::format("m{}@example.com", i), "", SuppressionReason::manual,
                               T0 + round));
        must_add(*s, es);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto settled = [&] {
        auto st = s->stats();
        return st.compactions > 0 && st.journal_records <= 1000;
    };
    while (!settled() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto st = s->stats();
    CHECK(st.compactions >= 1);
    CHECK(st.journal_records < 1000);
    CHECK(s->size() == 100);
    CHECK(s->find("", "m7@example.com", T0)->created == T0 + 24);
}
