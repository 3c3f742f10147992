// The per-tenant circuit breaker (tenant_breaker.h) with a controlled clock: it opens on
// rates over a minimum of attempts, holds the tenant, probes when half-open, closes or
// opens again, and an operator's pause and resume; other tenants are never held.
#include "core/shaping/tenant_breaker.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace kasi;
using O = TenantBreaker::Outcome;

namespace {

const int64_t t0 = 1'800'000'000'000;

std::shared_ptr<BreakerPolicy> policy() {
    auto p = std::make_shared<BreakerPolicy>();
    p->automatic = true;
    p->defaults.min_attempts = 20;
    p->defaults.hard_bounce_rate = 0.1;
    p->defaults.open_s = 600;
    p->defaults.probe = 0.5;
    p->defaults.probe_attempts = 4;
    return p;
}

void feed(TenantBreaker& b, const char* tenant, int ok, int hard, int64_t at) {
    for (int i = 0; i < ok; ++i) b.record(tenant, O::delivered, at);
    for (int i = 0; i < hard; ++i) b.record(tenant, O::hard_bounce, at);
}

}  // namespace

TEST_CASE("breaker: opens on a rate once enough attempts were made, holds only that tenant") {
    std::vector<std::string> events;
    TenantBreaker b([&](const std::string& j) { events.push_back(j); });
    b.set_policy(policy());
    feed(b, "acme", 5, 5, t0);  // 50% but only 10 attempts
    CHECK(b.allow("acme", t0));
    feed(b, "acme", 8, 2, t0 + 1000);  // 20 attempts, 7 hard: 35%
    CHECK_FALSE(b.allow("acme", t0 + 2000));
    CHECK(b.allow("other", t0 + 2000));
    CHECK(b.allow("", t0 + 2000));
    REQUIRE(events.size() == 1);
    CHECK(events[0].find("\"state\":\"open\"") != std::string::npos);
    CHECK(events[0].find("hard bounce rate 35.0% >= 10.0% (7 of 20)") != std::string::npos);
    CHECK(b.json(t0, false).find("\"tenant\":\"acme\"") != std::string::npos);
    CHECK(b.prometheus().find("kasi_tenant_breaker_state{tenant=\"acme\"} 1") != std::string::npos);
}

TEST_CASE("breaker: half-open lets probes through; good probes close it, bad ones reopen it") {
    TenantBreaker b(nullptr);
    b.set_policy(policy());
    feed(b, "acme", 10, 10, t0);
    REQUIRE_FALSE(b.allow("acme", t0 + 1000));
    int64_t later = t0 + 600'000;
    int allowed = 0;
    for (int i = 0; i < 10; ++i) allowed += b.allow("acme", later);
    CHECK(allowed == 5);                  // probe = 0.5
    feed(b, "acme", 4, 0, later + 1000);  // four good probes
    CHECK(b.allow("acme", later + 2000));
    for (int i = 0; i < 10; ++i) CHECK(b.allow("acme", later + 3000));  // closed: all go

    feed(b, "beta", 10, 10, t0);
    REQUIRE_FALSE(b.allow("beta", t0 + 1000));
    REQUIRE(b.allow("beta", later));      // half-open
    feed(b, "beta", 2, 2, later + 1000);  // bad probes: open again, twice as long
    CHECK_FALSE(b.allow("beta", later + 2000));
    CHECK_FALSE(b.allow("beta", later + 1000 + 1'199'000));
    CHECK(b.allow("beta", later + 1000 + 1'200'000));
}

TEST_CASE("breaker: an operator pauses and resumes; a pause survives a restart") {
    TenantBreaker b(nullptr);  // no automatic policy: pause and resume still work
    CHECK(b.pause("acme", "", t0).rfind("ok: tenant acme paused", 0) == 0);
    CHECK_FALSE(b.allow("acme", t0 + 1));
    feed(b, "acme", 100, 0, t0 + 2);  // rates do not resume a paused tenant
    CHECK_FALSE(b.allow("acme", t0 + 3));
    CHECK(b.pause("bad name", "", t0).rfind("error:", 0) == 0);

    TenantBreaker back(nullptr);
    std::string err;
    REQUIRE(back.load(b.save(), t0 + 10, err));
    CHECK_FALSE(back.allow("acme", t0 + 11));
    CHECK(back.resume("acme", t0 + 12) == "ok: tenant acme resumed");
    CHECK(back.allow("acme", t0 + 13));
    CHECK(back.resume("nobody", t0) == "ok: tenant nobody was not held");
    CHECK_FALSE(back.load("junk", t0, err));
}

TEST_CASE("breaker: per-tenant limits override the defaults; old minutes leave the window") {
    auto p = policy();
    BreakerLimits lenient = p->defaults;
    lenient.hard_bounce_rate = 0.5;
    p->tenants["bulk"] = lenient;
    TenantBreaker b(nullptr);
    b.set_policy(p);
    feed(b, "bulk", 14, 6, t0);  // 30%: under bulk's 50%
    CHECK(b.allow("bulk", t0 + 1));
    feed(b, "acme", 10, 9, t0);              // 19 attempts: not enough yet
    feed(b, "acme", 20, 0, t0 + 3'700'000);  // an hour later the bounces have left
    CHECK(b.allow("acme", t0 + 3'700'001));
}
