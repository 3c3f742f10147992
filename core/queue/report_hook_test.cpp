// The inbound_report hook's answers applied to Kasi's plan (report_hook.h), and a native
// handler registered in a HookTable answering through OutboundHooks on a real libuv loop.
#include "core/queue/report_hook.h"

#include <uv.h>

#include <catch2/catch.hpp>

#include "core/queue/outbound_hooks.h"

using namespace kasi;

namespace {

ReportEvent bounce_event() {
    ReportEvent ev;
    ev.kind = "bounce";
    ev.report_id = "R1";
    ev.rcpt = "alice@example.com";
    ev.classification.hard = true;
    return ev;
}

SuppressionEntry planned() {
    SuppressionEntry e;
    e.address = "alice@example.com";
    e.reason = SuppressionReason::hard_bounce;
    e.event = "R1";
    e.created = 1000;
    return e;
}

}  // namespace

TEST_CASE("inbound_report: CONT and a bare OK keep the plan; DENY vetoes") {
    OutboundAnswer none;
    auto a = apply_report_answer(Result::cont(), none, bounce_event(), planned(), nullptr, 1000);
    REQUIRE_FALSE(a.vetoed);
    REQUIRE(a.suppress == planned());
    a = apply_report_answer(Result::ok(), none, bounce_event(), planned(), nullptr, 1000);
    REQUIRE(a.suppress == planned());
    a = apply_report_answer(Result::deny("no"), none, bounce_event(), planned(), nullptr, 1000);
    REQUIRE(a.vetoed);
    REQUIRE_FALSE(a.suppress);
    // a code that means nothing here keeps the plan
    a = apply_report_answer(Result::denysoft(), none, bounce_event(), planned(), nullptr, 1000);
    REQUIRE_FALSE(a.vetoed);
    REQUIRE(a.suppress == planned());
}

TEST_CASE("inbound_report: OK with a table changes the planned entry") {
    OutboundAnswer ans;
    ans.report = ReportOverride{};
    ans.report->scope = "tenant:acme";
    ans.report->reason = "manual";
    ans.report->expires_in_s = 3600;
    auto a = apply_report_answer(Result::ok(), ans, bounce_event(), planned(), nullptr, 2000);
    REQUIRE(a.suppress);
    CHECK(a.suppress->scope == "tenant:acme");
    CHECK(a.suppress->reason == SuppressionReason::manual);
    CHECK(a.suppress->expires == 5600);
    CHECK(a.suppress->address == "alice@example.com");

    ans.report = ReportOverride{};
    ans.report->scope = "global";
    ans.report->expires_in_s = 0;
    a = apply_report_answer(Result::ok(), ans, bounce_event(), planned(), nullptr, 2000);
    REQUIRE(a.suppress);
    CHECK(a.suppress->scope.empty());
    CHECK(a.suppress->expires == 0);

    ans.report = ReportOverride{};
    ans.report->suppress = false;
    a = apply_report_answer(Result::ok(), ans, bounce_event(), planned(), nullptr, 2000);
    CHECK_FALSE(a.suppress);
    CHECK_FALSE(a.vetoed);
}

TEST_CASE("inbound_report: a bad change is ignored and the plan stands") {
    OutboundAnswer ans;
    ans.report = ReportOverride{};
    ans.report->reason = "no_such_reason";
    auto a = apply_report_answer(Result::ok(), ans, bounce_event(), planned(), nullptr, 2000);
    REQUIRE(a.suppress == planned());
    ans.report = ReportOverride{};
    ans.report->scope = std::string(300, 'x');
    a = apply_report_answer(Result::ok(), ans, bounce_event(), planned(), nullptr, 2000);
    REQUIRE(a.suppress == planned());
}

TEST_CASE("inbound_report: suppress=true without a plan and without a list does nothing") {
    OutboundAnswer ans;
    ans.report = ReportOverride{};
    ans.report->suppress = true;
    auto a = apply_report_answer(Result::ok(), ans, bounce_event(), std::nullopt, nullptr, 2000);
    CHECK_FALSE(a.suppress);
    CHECK_FALSE(a.vetoed);
}

TEST_CASE("inbound_report: the event carries the match and the plan") {
    ReportOutcome out;
    out.kind = ReportOutcome::Kind::complaint;
    ReportMatch m;
    m.recipient = "bob@example.com";
    m.message_id = "M1";
    m.feedback_type = "abuse";
    m.source_ip = "192.0.2.1";
    m.matched_by = "verp";
    ReportInput in;
    in.report_id = "R2";
    in.mail_from = "fbl@isp.example";
    auto e = planned();
    e.scope = "domain:sender.example";
    auto ev = report_event(out, m, in, e);
    CHECK(ev.kind == "complaint");
    CHECK(ev.rcpt == "bob@example.com");
    CHECK(ev.message_id == "M1");
    CHECK(ev.report_from == "fbl@isp.example");
    CHECK(ev.source_ip == "192.0.2.1");
    CHECK(ev.suppress);
    CHECK(ev.scope == "domain:sender.example");
    CHECK(ev.reason == "hard_bounce");
    auto none = report_event(out, m, in, std::nullopt);
    CHECK_FALSE(none.suppress);
}

TEST_CASE("inbound_report: a native handler sees the report and its answer changes the plan") {
    auto table = std::make_shared<HookTable>();
    ReportEvent seen;
    table->add(Hook::inbound_report, "native", [&seen](HookCall& c) -> std::optional<Result> {
        REQUIRE(c.report);
        REQUIRE(c.outbound);
        seen = *c.report;
        ReportOverride o;
        o.scope = "tenant:" + c.report->tenant;
        c.outbound->report = o;
        return Result::ok();
    });
    table->finalize();
    std::shared_ptr<const HookTable> shared = table;
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::shared_ptr<Resolver> resolver;
    ReportAction action;
    bool answered = false;
    {
        OutboundHooks hooks(&loop, shared, resolver);
        REQUIRE(hooks.has(Hook::inbound_report));
        auto m = std::make_shared<QueuedMessage>();
        m->id = "report.1";
        m->set_rcpts({"bounces@return.example"});
        ReportEvent ev = bounce_event();
        ev.tenant = "acme";
        ev.suppress = true;
        ev.reason = "hard_bounce";
        hooks.run_report(m, ev, [&](Result r, OutboundAnswer& a) {
            action = apply_report_answer(r, a, ev, planned(), nullptr, 2000);
            answered = true;
        });
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
    REQUIRE(answered);
    CHECK(seen.rcpt == "alice@example.com");
    CHECK(seen.kind == "bounce");
    CHECK(seen.suppress);
    REQUIRE(action.suppress);
    CHECK(action.suppress->scope == "tenant:acme");
    CHECK(action.suppress->reason == SuppressionReason::hard_bounce);
}
