// The classify_response hook from native code, on a real libuv loop: a handler registered
// in a HookTable sees one recipient's outcome (ResponseEvent) through OutboundHooks, and
// its answer changes the judgement the way the outcome stage applies it
// (apply_response_answer) with the shipped rules.
#include <catch2/catch.hpp>

#include <uv.h>

#include "core/classify/classifier.h"
#include "core/hooks/plugin.h"
#include "core/queue/outbound_hooks.h"
#include "core/queue/outcome.h"

using namespace kasi;

namespace {

std::shared_ptr<const Classifier> rules() {
    static std::shared_ptr<const Classifier> c = [] {
        std::string err;
        auto r = Classifier::load_shipped(err);
        INFO(err);
        REQUIRE(r);
        return r;
    }();
    return c;
}

Judgement judged(int code, const std::string& enhanced, const std::string& text) {
    Judgement j;
    j.verdict = code / 100 == 5 ? Verdict::bounce : Verdict::defer;
    j.command = "RCPT";
    j.cls = rules()->classify(ClassifyInput{OutcomeKind::reply, code, enhanced, text,
                                            "mx.example.net", "RCPT", "example.net"});
    return j;
}

// Runs classify_response for one outcome with `table`; returns the judgement after the answer.
Judgement ask(const std::shared_ptr<const HookTable>& table, Judgement j, int code,
              const std::string& text) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::shared_ptr<Resolver> resolver;
    {
        OutboundHooks hooks(&loop, table, resolver);
        auto m = std::make_shared<QueuedMessage>();
        m->id = "test.1";
        m->set_rcpts({"who@example.net"});
        ResponseEvent ev;
        ev.rcpt = "who@example.net";
        ev.domain = "example.net";
        ev.code = code;
        ev.text = text;
        ev.command = j.command;
        ev.host = "mx.example.net";
        ev.classification = j.cls;
        ev.verdict = j.verdict;
        bool answered = false;
        hooks.run_response(m, ev, [&](Result r, OutboundAnswer& a) {
            apply_response_answer(j, r, a.response, rules().get(), m->id);
            answered = true;
        });
        uv_run(&loop, UV_RUN_DEFAULT);
        REQUIRE(answered);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
    return j;
}

}  // namespace

TEST_CASE("classify_response: a native handler sees the outcome and changes the verdict") {
    auto table = std::make_shared<HookTable>();
    std::vector<std::string> seen;
    table->add(Hook::classify_response, "native", [&seen](HookCall& c) -> std::optional<Result> {
        REQUIRE(c.response);
        REQUIRE(c.outbound);
        const ResponseEvent& e = *c.response;
        seen.push_back(e.rcpt + " " + e.classification.reason + " " +
                       std::string(verdict_name(e.verdict)));
        if (e.classification.reason == "mailboxfull") {  // 4xx over quota: bounce
            ResponseOverride o;
            o.verdict = Verdict::bounce;
            c.outbound->response = o;
            return Result::ok();
        }
        if (e.text.find("try again later") != std::string::npos)
            return Result::denysoft("120");  // a 5xx that is not final
        if (e.text.find("policy") != std::string::npos) {
            ResponseOverride o;
            o.reason = "blocked";  // class, scope from the rules' defaults
            c.outbound->response = o;
            return Result::ok();
        }
        if (e.text.find("names") != std::string::npos) {
            ResponseOverride o;
            o.reason = "no-such-reason";
            o.cls = "no_such_class";
            o.verdict = Verdict::delivered;  // never: a failure stays a failure
            c.outbound->response = o;
            return Result::ok();
        }
        return Result::cont();
    });
    table->finalize();
    std::shared_ptr<const HookTable> t = table;

    Judgement full = judged(452, "4.2.2", "452 4.2.2 mailbox over quota");
    REQUIRE(full.cls.reason == "mailboxfull");
    REQUIRE(full.verdict == Verdict::defer);
    Judgement j = ask(t, full, 452, "mailbox over quota");
    CHECK(j.verdict == Verdict::bounce);
    CHECK(j.cls.reason == "mailboxfull");
    CHECK(j.cls.rule == "classify_response");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == "who@example.net mailboxfull defer");

    j = ask(t, judged(550, "5.7.1", "550 5.7.1 try again later"), 550, "try again later");
    CHECK(j.verdict == Verdict::defer);
    CHECK(j.retry_s == 120);

    j = ask(t, judged(550, "5.1.1", "550 5.1.1 user unknown"), 550, "refused by policy");
    CHECK(j.verdict == Verdict::bounce);
    CHECK(j.cls.reason == "blocked");
    CHECK(j.cls.cls == "reputation_block");
    CHECK(j.cls.scope == Scope::sender);
    CHECK_FALSE(j.cls.hard);

    Judgement unknown = judged(550, "5.1.1", "550 5.1.1 user unknown");
    j = ask(t, unknown, 550, "bad names");
    CHECK(j.verdict == Verdict::bounce);
    CHECK(j.cls.reason == unknown.cls.reason);
    CHECK(j.cls.cls == unknown.cls.cls);

    // CONT keeps the rules' answer
    j = ask(t, unknown, 550, "nothing to say");
    CHECK(j.verdict == Verdict::bounce);
    CHECK(j.cls.reason == "userunknown");
    CHECK(j.cls.rule == unknown.cls.rule);
}

TEST_CASE("classify_response: DENY bounces, DENYSOFT defers, a bad delay is ignored") {
    Judgement j = judged(451, "4.3.0", "451 4.3.0 temporary");
    apply_response_answer(j, Result::deny(), std::nullopt, rules().get(), "x");
    CHECK(j.verdict == Verdict::bounce);
    apply_response_answer(j, Result::denysoft(), std::nullopt, rules().get(), "x");
    CHECK(j.verdict == Verdict::defer);
    CHECK(j.retry_s == 0);
    apply_response_answer(j, Result::denysoft("soon"), std::nullopt, rules().get(), "x");
    CHECK(j.retry_s == 0);
    apply_response_answer(j, Result::denysoft("99999999999"), std::nullopt, rules().get(), "x");
    CHECK(j.retry_s == 0);
    ResponseOverride o;
    o.hard = true;
    o.scope = Scope::message;
    o.retry_s = 30;
    apply_response_answer(j, Result::ok(), o, rules().get(), "x");
    CHECK(j.cls.hard);
    CHECK(j.cls.scope == Scope::message);
    CHECK(j.retry_s == 30);
    // an override without OK is not applied
    o.hard = false;
    apply_response_answer(j, Result::cont(), o, rules().get(), "x");
    CHECK(j.cls.hard);
}
