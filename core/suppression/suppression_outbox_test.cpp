// The PostgreSQL outbox (suppression_outbox.h) and the store's hook that feeds it: records
// survive a reopen, a torn tail is cut off, reads start at any record, a drained file
// rotates (and an older generation left behind is removed at open), and only local changes
// reach the outbox (apply_replicated() does not). Real files in a temporary directory; no
// PostgreSQL here (test/integration/suppression_pg.py has it).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "core/suppression/suppression_outbox.h"
#include "core/suppression/suppression_store.h"
#include "test/unit/temp_dir.h"

using namespace kasi;
namespace fs = std::filesystem;

namespace {

using kasi::test::TempDir;

JournalRecord add(std::string address, std::string scope = "", int64_t created = 1700000000) {
    JournalRecord r;
    r.op = JournalOp::add;
    r.entry.address = std::move(address);
    r.entry.scope = std::move(scope);
    r.entry.reason = SuppressionReason::complaint;
    r.entry.created = created;
    r.entry.event = "ev-1";
    return r;
}

JournalRecord removal(std::string address, std::string scope = "") {
    JournalRecord r;
    r.op = JournalOp::remove;
    r.entry.address = std::move(address);
    r.entry.scope = std::move(scope);
    return r;
}

std::unique_ptr<SuppressionOutbox> must_open(const std::string& dir) {
    std::string err;
    auto o = SuppressionOutbox::open(dir, err);
    INFO(err);
    REQUIRE(o);
    return o;
}

std::vector<JournalRecord> read_all(SuppressionOutbox& o, uint64_t from = 0) {
    std::vector<JournalRecord> out;
    std::string err;
    INFO(err);
    REQUIRE(o.read(o.head().id, from, 1000, out, err));
    return out;
}

std::vector<std::string> outbox_files(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind("pg-outbox.", 0) == 0)
            names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

TEST_CASE("outbox: appended records survive a reopen, in order, from any record on") {
    TempDir d;
    std::string id;
    {
        auto o = must_open(d.path);
        id = o->head().id;
        std::string err;
        REQUIRE(o->append({add("a@x.com"), add("b@x.com", "tenant:t")}, err));
        REQUIRE(o->append({removal("a@x.com")}, err));
        CHECK(o->head().records == 3);
    }
    auto o = must_open(d.path);
    CHECK(o->head().id == id);  // the same file: PostgreSQL's count of it still applies
    auto all = read_all(*o);
    REQUIRE(all.size() == 3);
    CHECK(all[0].op == JournalOp::add);
    CHECK(all[0].entry.address == "a@x.com");
    CHECK(all[0].entry.reason == SuppressionReason::complaint);
    CHECK(all[0].entry.event == "ev-1");
    CHECK(all[1].entry.scope == "tenant:t");
    CHECK(all[2].op == JournalOp::remove);
    auto tail = read_all(*o, 2);
    REQUIRE(tail.size() == 1);
    CHECK(tail[0].entry.address == "a@x.com");
    CHECK(read_all(*o, 3).empty());
    std::vector<JournalRecord> out;
    std::string err;
    CHECK_FALSE(o->read("0000000000000000.9", 0, 10, out, err));  // not the current file
}

TEST_CASE("outbox: concurrent appenders each get their records, once, durable and readable") {
    TempDir d;
    constexpr int threads = 4, each = 50;
    {
        auto o = must_open(d.path);
        std::vector<std::thread> ts;
        std::atomic<int> failures{0};
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < each; ++i) {
                    std::string err;
                    auto a = add("t" + std::to_string(t) + "-" + std::to_string(i) + "@x.com");
                    if (!o->append({a, removal(a.entry.address)}, err)) ++failures;
                }
            });
        for (auto& t : ts) t.join();
        CHECK(failures == 0);
        CHECK(o->head().records == threads * each * 2);
        CHECK(o->counts().records == threads * each * 2);
    }
    auto o = must_open(d.path);
    auto all = read_all(*o);
    REQUIRE(all.size() == threads * each * 2);
    std::set<std::string> seen;
    for (size_t i = 0; i < all.size(); i += 2) {  // each append's two records stay together
        CHECK(all[i].op == JournalOp::add);
        CHECK(all[i + 1].op == JournalOp::remove);
        CHECK(all[i + 1].entry.address == all[i].entry.address);
        seen.insert(all[i].entry.address);
    }
    CHECK(seen.size() == threads * each);
}

TEST_CASE("outbox: a torn tail is cut off at open and appends continue after the good records") {
    TempDir d;
    std::string path;
    {
        auto o = must_open(d.path);
        std::string err;
        REQUIRE(o->append({add("a@x.com"), add("b@x.com")}, err));
        path = o->path();
    }
    auto good = fs::file_size(path);
    {
        std::ofstream f(path, std::ios::binary | std::ios::app);
        f << std::string("\x30\x00\x00\x00garbage", 11);  // a record a crash cut short
    }
    auto o = must_open(d.path);
    CHECK(fs::file_size(path) == good);
    CHECK(o->head().records == 2);
    std::string err;
    REQUIRE(o->append({add("c@x.com")}, err));
    auto all = read_all(*o);
    REQUIRE(all.size() == 3);
    CHECK(all[2].entry.address == "c@x.com");
}

TEST_CASE("outbox: damage in the middle refuses to open") {
    TempDir d;
    std::string path;
    {
        auto o = must_open(d.path);
        std::string err;
        REQUIRE(o->append({add("a@x.com")}, err));
        REQUIRE(o->append({add("b@x.com")}, err));
        path = o->path();
    }
    {
        std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(16 + 12);  // inside the first record's payload
        f.put('\x7f');
    }
    std::string err;
    CHECK_FALSE(SuppressionOutbox::open(d.path, err));
    CHECK(err.find(path) != std::string::npos);
}

TEST_CASE("outbox: a drained file rotates; an older generation left behind is removed") {
    TempDir d;
    auto o = must_open(d.path);
    o->set_rotate_bytes(64);
    std::string err;
    REQUIRE(o->append({add("a@x.com"), add("b@x.com")}, err));
    auto h = o->head();
    CHECK_FALSE(o->rotate_if_drained(h.id, 1, err));  // one record still waits
    CHECK(o->head().id == h.id);
    REQUIRE(o->rotate_if_drained(h.id, 2, err));
    auto h2 = o->head();
    CHECK(h2.id != h.id);
    CHECK(h2.node == h.node);
    CHECK(h2.records == 0);
    CHECK(outbox_files(d.path).size() == 1);
    REQUIRE(o->append({add("c@x.com")}, err));
    CHECK(read_all(*o).size() == 1);
    o.reset();

    // A crash between making generation N+1 and unlinking N leaves both: N was drained.
    fs::copy_file(d.path + "/pg-outbox." + h.node + ".2", d.path + "/pg-outbox." + h.node + ".1");
    auto again = must_open(d.path);
    CHECK(again->head().id == h2.id);
    CHECK(again->head().records == 1);
    CHECK(outbox_files(d.path) == std::vector<std::string>{"pg-outbox." + h.node + ".2"});
}

TEST_CASE("outbox: the store's local changes go through it first, replicated ones do not") {
    TempDir d;
    std::string err;
    SuppressionOptions so;
    so.background = false;
    auto store = SuppressionStore::open(d.path, so, err);
    REQUIRE(store);
    auto o = must_open(d.path);
    bool refuse = false;
    store->set_before_write([&](const std::vector<JournalRecord>& c, std::string& e) {
        if (refuse) return e = "refused by the test", false;
        return o->append(c, e);
    });
    SuppressionEntry e = add("Someone@X.com").entry;
    REQUIRE(store->add({e}, err));
    REQUIRE(store->remove("", {"other@x.com"}, err));
    auto all = read_all(*o);
    REQUIRE(all.size() == 2);
    CHECK(all[0].entry.address == "someone@x.com");  // as the store writes it: normalized
    CHECK(all[1].op == JournalOp::remove);

    refuse = true;  // an outbox that cannot write refuses the change: nothing half-done
    CHECK_FALSE(store->add({add("late@x.com").entry}, err));
    CHECK(err == "refused by the test");
    CHECK_FALSE(store->find("", "late@x.com", 0));

    // Changes pulled from PostgreSQL: written to the store, never back to the outbox; a
    // remove and an add of one key replace the entry even with an older `created`.
    std::vector<JournalRecord> pulled = {removal("someone@x.com"),
                                         add("someone@x.com", "", 1600000000)};
    REQUIRE(store->apply_replicated(pulled, err));
    auto found = store->find("", "someone@x.com", 0);
    REQUIRE(found);
    CHECK(found->created == 1600000000);
    CHECK(read_all(*o).size() == 2);
}
