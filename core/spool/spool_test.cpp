// The spool: record framing, torn tails, journal replay, compaction, and the writer's
// group commit. Real files in a temporary directory.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "core/spool/envelope.h"
#include "core/spool/record.h"
#include "core/spool/segment_files.h"
#include "core/spool/spool.h"
#include "test/unit/temp_dir.h"

using namespace kasi;
namespace fs = std::filesystem;

namespace {

using kasi::test::TempDir;

Envelope env(const std::string& id, int rcpts = 1) {
    Envelope e;
    e.id = id;
    e.received_ms = 1700000000000;
    e.mail_from = "s@example.org";
    for (int i = 0; i < rcpts; ++i) e.rcpts.push_back("r" + std::to_string(i) + "@example.net");
    e.notes["x y"] = "v\nw%";
    return e;
}

int submit_wait(Spool& s, const Envelope& e, std::string body) {
    std::promise<int> p;
    auto f = p.get_future();
    s.submit_message(e, std::move(body), [&p](const SpoolResult& r) { p.set_value(r.err); });
    return f.get();
}

int state_wait(Spool& s, const StateUpdate& u) {
    std::promise<int> p;
    auto f = p.get_future();
    s.submit_state(u, [&p](const SpoolResult& r) { p.set_value(r.err); });
    return f.get();
}

}  // namespace

TEST_CASE("envelope text round-trips, escaping included") {
    Envelope e = env("A.1", 2), back;
    e.tenant = "t 1";
    e.extra["future_key"] = "kept";
    std::string err;
    REQUIRE(Envelope::parse(e.serialize(), back, err));
    CHECK(back.rcpts == e.rcpts);
    CHECK(back.notes == e.notes);
    CHECK(back.tenant == "t 1");
    CHECK(back.extra["future_key"] == "kept");
    CHECK_FALSE(Envelope::parse("id =x\n", back, err));  // no recipients
    CHECK_FALSE(Envelope::parse("garbage\n", back, err));
}

TEST_CASE("records: a torn or corrupt tail stops the scan") {
    uint8_t h[record_header_size];
    std::string payload = "hello";
    encode_record_header(h, RecordType::state, payload);
    std::string one(reinterpret_cast<char*>(h), sizeof h);
    one += payload;
    std::string data = one + one;
    int n = 0;
    auto r = scan_records(data, [&](const RecordView&) { ++n; });
    CHECK(n == 2);
    CHECK_FALSE(r.torn);
    for (size_t cut = 1; cut < one.size(); ++cut) {  // every possible torn length
        n = 0;
        r = scan_records(data.substr(0, one.size() + cut), [&](const RecordView&) { ++n; });
        CHECK(n == 1);
        CHECK(r.torn);
        CHECK(r.valid_end == one.size());
    }
    std::string flipped = data;
    flipped[one.size() + record_header_size + 1] ^= 1;  // bit rot in the second payload
    n = 0;
    r = scan_records(flipped, [&](const RecordView&) { ++n; });
    CHECK(n == 1);
    CHECK(r.problem == "payload checksum mismatch");
}

TEST_CASE("spool: messages survive a restart; done ones do not come back") {
    TempDir t;
    {
        Spool s;
        std::string err;
        REQUIRE(s.open(t.path, err));
        for (int i = 0; i < 5; ++i)
            REQUIRE(submit_wait(s, env("M." + std::to_string(i), 2), "body " + std::to_string(i)) ==
                    0);
        StateUpdate u;
        u.id = "M.1";
        u.done = true;
        REQUIRE(state_wait(s, u) == 0);
        StateUpdate d;
        d.id = "M.2";
        d.attempts = 3;
        d.next_due_ms = 42;
        d.rcpts.push_back({1, RcptState{RcptStatus::deferred, "451 try later"}});
        d.event = "deferred";
        d.at_ms = 7;
        REQUIRE(state_wait(s, d) == 0);
    }
    for (int round = 0; round < 2; ++round) {  // the second open reads the compacted journal
        Spool s;
        std::string err;
        REQUIRE(s.open(t.path, err));
        const auto& rec = s.recovered();
        REQUIRE(rec.messages.size() == 4);
        CHECK(rec.messages[0].env.id == "M.0");
        CHECK(rec.messages[1].env.id == "M.2");
        CHECK(rec.messages[1].state.attempts == 3);
        CHECK(rec.messages[1].state.next_due_ms == 42);
        CHECK(rec.messages[1].state.rcpts[1].status == RcptStatus::deferred);
        CHECK(rec.messages[1].state.rcpts[1].last_reply == "451 try later");
        std::string body;
        REQUIRE(read_message_body(t.path, rec.messages[1], body, err));
        CHECK(body == "body 2");
    }
}

TEST_CASE("spool: a torn tail is cut off at recovery") {
    TempDir t;
    {
        Spool s;
        std::string err;
        REQUIRE(s.open(t.path, err));
        REQUIRE(submit_wait(s, env("A.1"), "one") == 0);
    }
    std::vector<SegmentFile> segs;
    std::string err;
    REQUIRE(list_segments(t.path, SegmentKind::msg, segs, err));
    REQUIRE(!segs.empty());
    auto size = fs::file_size(segs.back().path);
    {
        std::ofstream f(segs.back().path, std::ios::app | std::ios::binary);
        f << "KSPL\x01\x01garbage";
    }
    Spool s;
    REQUIRE(s.open(t.path, err));
    CHECK(s.recovered().messages.size() == 1);
    CHECK(fs::file_size(segs.back().path) == size);
}

TEST_CASE("spool: only one process may own a spool") {
    TempDir t;
    Spool a, b;
    std::string err;
    REQUIRE(a.open(t.path, err));
    CHECK_FALSE(b.open(t.path, err));
    CHECK(err.find("in use") != std::string::npos);
}

TEST_CASE("spool writer: concurrent submissions share syncs (group commit)") {
    TempDir t;
    Spool s;
    std::string err;
    REQUIRE(s.open(t.path, err));
    auto before = s.stats();
    std::vector<std::promise<int>> ps(200);
    for (size_t i = 0; i < ps.size(); ++i)
        s.submit_message(env("G." + std::to_string(i)), std::string(4096, 'x'),
                         [&ps, i](const SpoolResult& r) { ps[i].set_value(r.err); });
    for (auto& p : ps) CHECK(p.get_future().get() == 0);
    auto after = s.stats();
    CHECK(after.records - before.records == 200);
    CHECK(after.syncs - before.syncs < 200);  // batched: fewer syncs than records
}
