// The automation rules' engine (shaping_engine.h) with a controlled clock: matching,
// threshold within the window, the action and its escalation, the hold and the gradual
// step back, provenance, and actions that survive a restart.
#include "core/shaping/shaping_engine.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace kasi;

namespace {

struct Recorder : ShapingTarget {
    std::vector<std::string> changes;
    void shaping_changed(const std::string& s, const std::string& p) override {
        changes.push_back(s + "@" + p);
    }
};

std::shared_ptr<ShapingRules> rules_with(ShapingRule r) {
    auto rs = std::make_shared<ShapingRules>();
    rs->rules.push_back(std::move(r));
    return rs;
}

ShapingRule gmail_rate() {
    ShapingRule r;
    r.name = "gmail-rate";
    r.origin = "adaptive.lua:7";
    r.providers = {"google"};
    r.classes = {"rate_limited"};
    r.threshold = 3;
    r.window_s = 60;
    r.action.rate_factor = 0.5;
    r.action.connections_factor = 0.5;
    r.hold_s = 300;
    r.recover_every_s = 60;
    r.recover = 2.0;
    return r;
}

ShapingInput deferral(std::string_view provider = "google", std::string_view cls = "rate_limited") {
    ShapingInput in;
    in.kind = ShapingInput::Kind::deferred;
    in.source = "ip1";
    in.domain = "shop.example";
    in.provider = provider;
    in.cls = cls;
    in.reply = "421 4.7.28 unusual rate";
    return in;
}

ShapingInput delivery() {
    ShapingInput in = deferral();
    in.kind = ShapingInput::Kind::delivered;
    in.cls = "delivered";
    in.reply = "250 ok";
    return in;
}

const int64_t t0 = 1'800'000'000'000;

}  // namespace

TEST_CASE("shaping: a rule acts when its threshold is reached within the window, on that pair") {
    Recorder rec;
    std::vector<std::string> events;
    ShapingEngine e(rec, [&](const std::string& j) { events.push_back(j); });
    e.set_rules(rules_with(gmail_rate()), t0);
    for (int i = 0; i < 60; ++i) e.observe(delivery(), t0 + i * 1000);  // 1 message a second
    e.observe(deferral(), t0 + 60'000);
    e.observe(deferral("yahoo"), t0 + 60'500);                        // another provider
    e.observe(deferral("google", "invalid_recipient"), t0 + 60'600);  // another class
    e.observe(deferral(), t0 + 200'000);  // the first one left the window
    e.observe(deferral(), t0 + 201'000);
    CHECK_FALSE(e.effect("ip1", "google"));
    e.observe(deferral(), t0 + 202'000);
    auto eff = e.effect("ip1", "google");
    REQUIRE(eff);
    CHECK(eff->conn_factor == Approx(0.5));
    CHECK(eff->rate > 0);
    CHECK(eff->why.find("adaptive gmail-rate level 1") != std::string::npos);
    CHECK_FALSE(e.effect("ip1", "yahoo"));
    CHECK_FALSE(e.effect("ip2", "google"));
    CHECK(rec.changes == std::vector<std::string>{"ip1@google"});
    REQUIRE(events.size() == 1);
    CHECK(events[0].find("\"action\":\"triggered\"") != std::string::npos);
    CHECK(events[0].find("\"origin\":\"adaptive.lua:7\"") != std::string::npos);
    CHECK(events[0].find("421 4.7.28 unusual rate") != std::string::npos);
}

TEST_CASE("shaping: the rate is cut from what the pair sent, and cut again when it goes on") {
    Recorder rec;
    ShapingEngine e(rec, nullptr);
    e.set_rules(rules_with(gmail_rate()), t0);
    for (int i = 0; i < 120; ++i) e.observe(delivery(), t0 + i * 500);  // 2 a second
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 60'000 + i);
    auto first = e.effect("ip1", "google");
    REQUIRE(first);
    CHECK(first->rate == Approx(1.0).epsilon(0.03));  // ~2/s over the last minute x 0.5
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 61'000 + i);  // settling: no change
    CHECK(e.effect("ip1", "google")->rate == Approx(first->rate));
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 95'000 + i);
    auto second = e.effect("ip1", "google");
    CHECK(second->rate == Approx(first->rate / 2));  // escalated: cut again
    CHECK(second->conn_factor == Approx(0.25));
    CHECK(second->why.find("level 2") != std::string::npos);
}

TEST_CASE("shaping: after the hold the action steps back gradually, then ends") {
    Recorder rec;
    std::vector<std::string> events;
    ShapingEngine e(rec, [&](const std::string& j) { events.push_back(j); });
    e.set_rules(rules_with(gmail_rate()), t0);
    for (int i = 0; i < 60; ++i) e.observe(delivery(), t0 + i * 1000);
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 60'000 + i);
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 90'000 + i);  // level 2
    const double cut = e.effect("ip1", "google")->rate;                  // ~1/s x 0.5 x 0.5
    REQUIRE(cut == Approx(0.25).epsilon(0.05));
    const int64_t t = t0 + 90'005;
    e.tick(t + 299'000);  // still held
    CHECK(e.effect("ip1", "google")->rate == Approx(cut));
    e.tick(t + 300'000);  // first step back: x2
    CHECK(e.effect("ip1", "google")->rate == Approx(cut * 2));
    e.tick(t + 330'000);  // not yet: one step per recover_every
    CHECK(e.effect("ip1", "google")->rate == Approx(cut * 2));
    e.tick(t + 360'000);  // back to where it started (1/s): the cut is lifted
    CHECK_FALSE(e.effect("ip1", "google"));
    CHECK(events.back().find("\"action\":\"ended\"") != std::string::npos);
    CHECK(rec.changes.size() == 4);  // triggered, escalated, stepped back, ended
}

TEST_CASE("shaping: a suspension escalates with each trigger and holds the action") {
    Recorder rec;
    ShapingEngine e(rec, nullptr);
    ShapingRule r = gmail_rate();
    r.name = "gmail-block";
    r.classes = {"reputation_block"};
    r.threshold = 1;
    r.action = {};
    r.action.suspend_s = 60;
    r.hold_s = 0;
    r.escalate = 3;
    e.set_rules(rules_with(r), t0);
    e.observe(deferral("google", "reputation_block"), t0);
    CHECK(e.effect("ip1", "google")->suspended_until_ms == t0 + 60'000);
    e.observe(deferral("google", "reputation_block"), t0 + 1000);  // settling
    CHECK(e.effect("ip1", "google")->suspended_until_ms == t0 + 60'000);
    e.observe(deferral("google", "reputation_block"), t0 + 31'000);
    CHECK(e.effect("ip1", "google")->suspended_until_ms == t0 + 31'000 + 180'000);
    e.tick(t0 + 200'000);  // still suspended
    CHECK(e.effect("ip1", "google"));
}

TEST_CASE("shaping: actions survive a restart; those of rules removed at a reload end") {
    Recorder rec;
    ShapingEngine e(rec, nullptr);
    e.set_rules(rules_with(gmail_rate()), t0);
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + i);
    std::string state = e.save();
    CHECK(state.rfind("kasi-adaptive 1\n", 0) == 0);

    Recorder rec2;
    ShapingEngine back(rec2, nullptr);
    std::string err;
    REQUIRE(back.load(state, t0 + 10, err));
    back.set_rules(rules_with(gmail_rate()), t0 + 10);
    auto a = e.effect("ip1", "google"), b = back.effect("ip1", "google");
    REQUIRE(b);
    CHECK(b->rate == Approx(a->rate));
    CHECK(b->why == a->why);
    CHECK(b->pool == a->pool);  // an empty field stays empty
    CHECK(back.json(t0).find("421 4.7.28 unusual rate") != std::string::npos);

    back.set_rules(std::make_shared<ShapingRules>(), t0 + 20);  // the rule is gone
    CHECK_FALSE(back.effect("ip1", "google"));
    CHECK(rec2.changes == std::vector<std::string>{"ip1@google"});
    CHECK_FALSE(back.load("garbage", t0, err));
}

TEST_CASE("shaping: a reply pattern and the domain scope") {
    Recorder rec;
    ShapingEngine e(rec, nullptr);
    ShapingRule r = gmail_rate();
    r.scope = ShapingRule::Scope::domain;
    r.classes = {};
    r.reply_pattern = "4\\.7\\.28";
    r.reply = std::make_shared<RE2>(r.reply_pattern);
    r.threshold = 2;
    e.set_rules(rules_with(r), t0);
    ShapingInput other = deferral();
    other.reply = "421 4.7.0 something else";
    e.observe(other, t0);
    e.observe(other, t0 + 1);
    CHECK_FALSE(e.domain_effect("shop.example", "google"));
    e.observe(deferral(), t0 + 2);
    e.observe(deferral(), t0 + 3);
    CHECK(e.domain_effect("shop.example", "google"));
    CHECK_FALSE(e.effect("ip1", "google"));  // the source is not cut
    CHECK(rec.changes.empty());              // no ready queue is told
}

TEST_CASE("shaping: a young pair's rate is over its age; at max_level a trigger only holds") {
    Recorder rec;
    ShapingEngine e(rec, nullptr);
    ShapingRule r = gmail_rate();
    r.max_level = 2;
    e.set_rules(rules_with(r), t0);
    for (int i = 0; i < 20; ++i) e.observe(delivery(), t0 + i * 500);  // 2/s for 10 s
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 10'000 + i);
    double first = e.effect("ip1", "google")->rate;
    CHECK(first == Approx(1.0).epsilon(0.15));  // ~2/s (not 23 in 60 s) x 0.5
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 41'000 + i);  // level 2
    double second = e.effect("ip1", "google")->rate;
    CHECK(second == Approx(first / 2));
    for (int i = 0; i < 3; ++i) e.observe(deferral(), t0 + 72'000 + i);  // at max_level
    CHECK(e.effect("ip1", "google")->rate == Approx(second));
    CHECK(e.effect("ip1", "google")->conn_factor == Approx(0.25));
}
