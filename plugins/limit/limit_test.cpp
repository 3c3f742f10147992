// RateSpec syntax, the sliding and fixed windows, key sweeping, and host key order.
#include <catch2/catch.hpp>

#include "plugins/limit/limit.h"
#include "plugins/limit/rate_table.h"

using namespace kasi;

TEST_CASE("rate specs as haraka-plugin-limit writes them") {
    auto a = RateSpec::parse("5");
    REQUIRE(a);
    CHECK(a->limit == 5);
    CHECK(a->period_ms == 60000);
    CHECK(RateSpec::parse("50/5m")->period_ms == 300000);
    CHECK(RateSpec::parse("1/15m")->limit == 1);
    CHECK(RateSpec::parse("10/30")->period_ms == 30000);
    CHECK(RateSpec::parse("3/2h")->period_ms == 7200000);
    CHECK(RateSpec::parse("3/1d")->period_ms == 86400000);
    CHECK(RateSpec::parse("0")->limit == 0);
    CHECK_FALSE(RateSpec::parse("x"));
    CHECK_FALSE(RateSpec::parse("5/"));
    CHECK_FALSE(RateSpec::parse("5/0m"));
    CHECK_FALSE(RateSpec::parse("5/3w"));
    CHECK_FALSE(RateSpec::parse("-1"));
}

TEST_CASE("sliding window counts the last period exactly") {
    RateTable t;
    RateSpec s{3, 1000};
    CHECK(t.sliding_hit("k", s, 0) == 1);
    CHECK(t.sliding_hit("k", s, 100) == 2);
    CHECK(t.sliding_hit("k", s, 200) == 3);
    CHECK(t.sliding_hit("k", s, 300) == 4);   // over the limit
    CHECK(t.sliding_hit("k", s, 1150) == 3);  // 0 and 100 have left the window; capped
    CHECK(t.sliding_hit("k", s, 5000) == 1);
    CHECK(t.sliding_hit("other", s, 5000) == 1);
}

TEST_CASE("fixed window resets after its period") {
    RateTable t;
    RateSpec s{2, 1000};
    CHECK(t.fixed_hit("k", s, 0) == 1);
    CHECK(t.fixed_hit("k", s, 500) == 2);
    CHECK(t.fixed_peek("k", 900) == 2);
    CHECK(t.fixed_hit("k", s, 999) == 3);
    CHECK(t.fixed_peek("k", 1000) == 0);
    CHECK(t.fixed_hit("k", s, 1000) == 1);
}

TEST_CASE("concurrency gauge never goes negative and frees its key") {
    RateTable t;
    CHECK(t.concurrency_add("ip", 1) == 1);
    CHECK(t.concurrency_add("ip", 1) == 2);
    CHECK(t.concurrency_add("ip", -1) == 1);
    CHECK(t.concurrency_add("ip", -1) == 0);
    CHECK(t.concurrency_add("ip", -1) == 0);
    CHECK(t.keys() == 0);
}

TEST_CASE("expired keys are swept and the key count stays bounded") {
    RateTable t(1000);
    RateSpec s{5, 1000};
    for (int i = 0; i < 5000; ++i) t.fixed_hit("scan" + std::to_string(i), s, 0);
    CHECK(t.keys() <= 1000);
    for (int i = 0; i < 5000; ++i) t.fixed_hit("later" + std::to_string(i), s, 10000 + i);
    CHECK(t.keys() <= 1000);
}

TEST_CASE("host keys go from the most specific to the least") {
    auto k = limit_host_keys("192.0.2.7", "Mail.Example.COM");
    std::vector<std::string> want{"192.0.2.7",        "192.0.2",     "192.0", "192",
                                  "mail.example.com", "example.com", "com"};
    CHECK(k == want);
    auto k6 = limit_host_keys("2001:db8::1", "");
    REQUIRE(k6.size() == 8);
    CHECK(k6[0] == "2001:db8:0:0:0:0:0:1");
    CHECK(k6[7] == "2001");
    CHECK(limit_host_keys("::ffff:127.0.0.1", "")[0] == "127.0.0.1");
}
