// The hook runner on a real libuv loop: chain order and priorities, runs-all hooks, the
// deny hook and its override, asynchronous answers, timeouts (and late answers ignored),
// exceptions, and cancellation.
#include <catch2/catch.hpp>

#include <uv.h>

#include <stdexcept>
#include <vector>

#include "core/hooks/runner.h"
#include "core/server/server_config.h"
#include "core/smtp/server/session.h"
#include "test/unit/no_session_host.h"

using namespace kasi;
using kasi::test::NoHost;

namespace {

struct Fixture : HookRunner::Sink {
    uv_loop_t loop;
    std::unique_ptr<NoHost> host;
    std::shared_ptr<Session> session;
    std::shared_ptr<HookTable> table = std::make_shared<HookTable>();
    std::shared_ptr<HookRunner> runner;
    std::vector<std::string> trace;
    std::vector<std::pair<Hook, Result>> done;
    std::unique_ptr<HookCall> call;

    Fixture() {
        uv_loop_init(&loop);
        host = std::make_unique<NoHost>(&loop);
        session = std::make_shared<Session>(*host, SessionConfig{}, false);
        runner = std::make_shared<HookRunner>(&loop, *this);
    }
    ~Fixture() override {
        runner.reset();
        session.reset();
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
    }
    void hook_done(Hook h, Result r) override { done.emplace_back(h, std::move(r)); }

    // A handler that records its name and answers `r`.
    void add(Hook h, const std::string& name, Result r, int prio = 0) {
        table->add(
            h, name,
            [this, name, r](HookCall&) -> std::optional<Result> {
                trace.push_back(name);
                return r;
            },
            prio);
    }
    void run(Hook h) {
        table->finalize();
        call = std::make_unique<HookCall>(HookCall{h, session.get()});
        runner->run(table, *call);
    }
    void spin() { uv_run(&loop, UV_RUN_DEFAULT); }
};

}  // namespace

TEST_CASE("chain order follows priority then registration; the first answer ends it") {
    Fixture f;
    f.add(Hook::mail, "b", Result::cont());
    f.add(Hook::mail, "c", Result::deny("no"));
    f.add(Hook::mail, "a", Result::cont(), -5);
    f.add(Hook::mail, "d", Result::ok());
    f.run(Hook::mail);
    CHECK(f.trace == std::vector<std::string>{"a", "b", "c"});
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.code == Code::deny);
    CHECK(f.done[0].second.msg == "no");
}

TEST_CASE("an empty chain answers CONT") {
    Fixture f;
    f.run(Hook::rcpt);
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.code == Code::cont);
}

TEST_CASE("runs-all hooks run every handler whatever they answer") {
    Fixture f;
    f.add(Hook::connect_init, "a", Result::deny());
    f.add(Hook::connect_init, "b", Result::ok());
    f.add(Hook::connect_init, "c", Result::cont());
    f.run(Hook::connect_init);
    CHECK(f.trace == std::vector<std::string>{"a", "b", "c"});
    REQUIRE(f.done.size() == 1);
}

TEST_CASE("the deny hook sees the denial and can override it") {
    Fixture f;
    f.add(Hook::rcpt, "strict", Result::deny("blocked"));
    f.add(Hook::rcpt, "after", Result::ok("accepted later"));
    std::string seen_by, seen_msg;
    f.table->add(Hook::deny, "overrider", [&](HookCall& c) -> std::optional<Result> {
        seen_by = std::string(c.denied_by);
        seen_msg = c.denial ? c.denial->msg : "";
        CHECK(c.denied_hook == Hook::rcpt);
        return Result::ok();
    });
    f.run(Hook::rcpt);
    CHECK(seen_by == "strict");
    CHECK(seen_msg == "blocked");
    CHECK(f.trace == std::vector<std::string>{"strict", "after"});
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.code == Code::ok);
    CHECK(f.done[0].second.msg == "accepted later");
}

TEST_CASE("a deny handler answering anything but OK lets the denial stand") {
    Fixture f;
    f.add(Hook::mail, "strict", Result::denysoft("later"));
    f.add(Hook::mail, "never", Result::ok());
    f.add(Hook::deny, "logger", Result::cont());
    f.add(Hook::deny, "other", Result::deny("ignored"));
    f.run(Hook::mail);
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.code == Code::denysoft);
    CHECK(f.done[0].second.msg == "later");
    CHECK(f.trace == std::vector<std::string>{"strict", "logger", "other"});
}

TEST_CASE("an asynchronous answer resumes the chain on the loop") {
    Fixture f;
    uv_timer_t timer;
    uv_timer_init(&f.loop, &timer);
    PendingHook pending;
    f.table->add(Hook::helo, "slow", [&](HookCall& c) -> std::optional<Result> {
        pending = c.suspend();
        timer.data = &pending;
        uv_timer_start(
            &timer,
            [](uv_timer_t* t) { static_cast<PendingHook*>(t->data)->resume(Result::cont()); }, 10,
            0);
        return std::nullopt;
    });
    f.add(Hook::helo, "next", Result::denysoft("after the wait"));
    f.run(Hook::helo);
    CHECK(f.done.empty());
    f.spin();
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.msg == "after the wait");
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&f.loop, UV_RUN_NOWAIT);
}

TEST_CASE("a handler that never answers times out with DENYSOFT; a late answer is ignored") {
    Fixture f;
    PendingHook pending;
    f.table->add(
        Hook::data, "stuck",
        [&](HookCall& c) -> std::optional<Result> {
            pending = c.suspend();
            return std::nullopt;
        },
        0, 50);
    f.add(Hook::data, "never", Result::ok());
    f.run(Hook::data);
    f.spin();
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.code == Code::denysoft);
    CHECK(f.done[0].second.msg == "plugin timeout");
    pending.resume(Result::ok());  // too late
    CHECK(f.done.size() == 1);
    CHECK(f.trace.empty());
}

TEST_CASE("a handler that throws counts as CONT") {
    Fixture f;
    f.table->add(Hook::mail, "thrower",
                 [](HookCall&) -> std::optional<Result> { throw std::runtime_error("boom"); });
    f.add(Hook::mail, "next", Result::deny("from next"));
    f.run(Hook::mail);
    REQUIRE(f.done.size() == 1);
    CHECK(f.done[0].second.msg == "from next");
}

TEST_CASE("cancel drops a pending answer") {
    Fixture f;
    PendingHook pending;
    f.table->add(Hook::rcpt, "slow", [&](HookCall& c) -> std::optional<Result> {
        pending = c.suspend();
        return std::nullopt;
    });
    f.run(Hook::rcpt);
    f.runner->cancel();
    pending.resume(Result::ok());
    f.spin();
    CHECK(f.done.empty());
}
