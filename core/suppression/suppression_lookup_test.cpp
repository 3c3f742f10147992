// The lookup path of the suppression list (the RCPT check and the one before delivery):
// the same answers for mixed-case, UTF-8 and scoped addresses whichever way the scopes are
// passed, and no heap allocation for a lookup that misses (the common case). Also the
// operator's `suppress list` paging. A counting operator new in this file sees every
// allocation of the test binary; it counts only while a test asks it to, on its thread.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <set>

#include <fmt/format.h>

#include "core/suppression/suppression_admin.h"
#include "core/suppression/suppression_service.h"
#include "core/suppression/suppression_store.h"
#include "core/util/strings.h"
#include "test/unit/temp_dir.h"

namespace {

thread_local bool counting = false;
thread_local size_t allocations = 0;

}  // namespace

// These are the program's operator new and delete (the replaceable ones): malloc and free
// are theirs to use, which GCC, seeing free() on memory from operator new once inlined,
// would otherwise warn about.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
    if (counting) ++allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}

void operator delete(void* p) noexcept {
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

// Every other non-aligned form too, so that no memory from one allocator reaches the other
// (Catch2 uses the nothrow form; ASan checks that the pairs match).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    if (counting) ++allocations;
    return std::malloc(n ? n : 1);
}

void* operator new[](std::size_t n) {
    return operator new(n);
}

void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return operator new(n, t);
}

void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

void operator delete[](void* p) noexcept {
    std::free(p);
}

void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

using namespace kasi;
namespace fs = std::filesystem;

namespace {

using kasi::test::TempDir;

// The heap allocations `fn` makes on this thread.
template <class F>
size_t allocations_of(F&& fn) {
    allocations = 0;
    counting = true;
    fn();
    counting = false;
    return allocations;
}

SuppressionEntry entry(std::string address, std::string scope) {
    SuppressionEntry e;
    e.address = std::move(address);
    e.scope = std::move(scope);
    e.reason = SuppressionReason::complaint;
    e.created = 1700000000;
    return e;
}

}  // namespace

TEST_CASE("suppression lookups: case, UTF-8 and scopes give the same answers every way") {
    TempDir d;
    std::string err;
    auto s = SuppressionStore::open(d.path, SuppressionOptions{.background = false}, err);
    REQUIRE(s);
    REQUIRE(s->add({entry("John.Doe@Example.COM", ""), entry("Ünïcode.User@Bücher.Example", ""),
                    entry("scoped@example.com", "domain:news.example"),
                    entry("tenant@example.com", "tenant:Acme")},
                   err));
    int64_t now = 1800000000;
    std::vector<std::string> scopes{"tenant:Acme", "domain:news.example"};
    std::string_view views[] = {"tenant:Acme", "domain:news.example"};
    struct Case {
        const char* address;
        const char* expect;  // the entry's address, or "" for none
    };
    const Case cases[] = {
        {"john.doe@example.com", "john.doe@example.com"},
        {"  JOHN.DOE@EXAMPLE.COM\t", "john.doe@example.com"},  // trimmed, ASCII lower-cased
        {"ÜNïCODE.USER@BüCHER.EXAMPLE", "Ünïcode.user@bücher.example"},  // UTF-8 kept
        {"ünïcode.user@bücher.example", ""},         // not the same bytes: no match
        {"Ünïcode.user@xn--bcher-kva.example", ""},  // punycode is another domain
        {"Scoped@Example.com", "scoped@example.com"},
        {"tenant@example.com", "tenant@example.com"},
        {"nobody@example.com", ""},
        {"no-at-sign", ""},
        {"", ""},
    };
    for (const auto& c : cases) {
        INFO(c.address);
        auto a = s->check(c.address, scopes, now);
        auto b = s->check(c.address, std::span<const std::string_view>(views), now);
        CHECK(a == b);
        CHECK((a ? a->address : "") == std::string(c.expect));
    }
    // The scopes matter: global only, or another tenant's, misses the scoped entries.
    CHECK_FALSE(s->check("scoped@example.com", std::vector<std::string>{}, now));
    CHECK_FALSE(s->check("tenant@example.com", {"tenant:acme"}, now));  // scopes are exact
    CHECK(s->find("domain:news.example", " SCOPED@example.COM", now));
    CHECK_FALSE(s->find("", "scoped@example.com", now));
    // An address longer than any entry's can be is looked up without harm, and misses.
    std::string huge(5000, 'a');
    CHECK_FALSE(s->check(huge + "@example.com", scopes, now));
    CHECK_FALSE(s->find("", huge + "@example.com", now));
}

TEST_CASE("suppression scope names: built on the stack, lower-cased on request, bounded") {
    SuppressionScopeName d("domain:", "News.Example", true);
    CHECK(d.fits());
    CHECK(d.view() == "domain:news.example");
    SuppressionScopeName t("tenant:", "Acme", false);
    CHECK(t.view() == "tenant:Acme");
    SuppressionScopeName full("tenant:", std::string(suppression_max_scope - 7, 'x'), false);
    CHECK(full.fits());
    CHECK(full.view().size() == suppression_max_scope);
    SuppressionScopeName over("tenant:", std::string(suppression_max_scope - 6, 'x'), false);
    CHECK_FALSE(over.fits());
}

TEST_CASE("suppression lookups that miss allocate nothing") {
    TempDir d;
    std::string err;
    auto s = SuppressionStore::open(d.path, SuppressionOptions{.background = false}, err);
    REQUIRE(s);
    std::vector<SuppressionEntry> many;
    for (int i = 0; i < 2000; ++i)
        many.push_back(entry(fmt::format("user{}@example.com", i), i % 2 ? "" : "tenant:acme"));
    REQUIRE(s->add(many, err));
    std::string_view views[] = {"tenant:acme", "domain:news.example"};
    size_t hits = 0;
    size_t n = allocations_of([&] {
        for (int i = 2000; i < 4000; ++i) {
            char addr[64];
            int len = std::snprintf(addr, sizeof addr, "User%d@Example.COM", i);
            hits += s->check(std::string_view(addr, size_t(len)),
                             std::span<const std::string_view>(views), 0)
                        .has_value();
            hits += s->find("tenant:acme", std::string_view(addr, size_t(len)), 0).has_value();
        }
        hits +=
            s->check("someone@unknown-domain.example", std::span<const std::string_view>(views), 0)
                .has_value();
    });
    CHECK(hits == 0);
    CHECK(n == 0);
    // A hit copies the entry out (strings): that may allocate, and must find it.
    CHECK(s->check("USER2@example.com", std::span<const std::string_view>(views), 0));

    // The service's RCPT check builds its scope without the heap too.
    auto policy = std::make_shared<SuppressionPolicy>();
    policy->dir = d.path + "/svc";
    auto svc = SuppressionService::open(policy, nullptr, err);
    REQUIRE(svc);
    REQUIRE(svc->store().add({entry("listed@example.com", "domain:news.example")}, err));
    std::string refusal;
    n = allocations_of([&] { refusal = svc->refusal("other@example.com", "News.Example", "::1"); });
    CHECK(refusal.empty());
    CHECK(n == 0);
    CHECK_FALSE(svc->refusal("Listed@Example.com", "NEWS.example", "::1").empty());
    CHECK(svc->check("listed@example.com", "acme", "News.Example"));
    CHECK_FALSE(svc->check("listed@example.com", "acme", "other.example"));
}

TEST_CASE("suppress list pages with LIMIT and AFTER until next is 0") {
    TempDir d;
    std::string err;
    auto policy = std::make_shared<SuppressionPolicy>();
    policy->dir = d.path;
    auto svc = SuppressionService::open(policy, nullptr, err);
    REQUIRE(svc);
    std::vector<SuppressionEntry> add;
    for (int i = 0; i < 7; ++i) add.push_back(entry(fmt::format("p{}@example.com", i), ""));
    add.push_back(entry("t@example.com", "tenant:acme"));
    REQUIRE(svc->store().add(add, err));

    auto walk = [&](const std::string& scope, const std::string& limit) {
        std::multiset<std::string> seen;
        std::string after = "0";
        for (int pages = 0; pages < 50; ++pages) {
            std::string reply =
                suppression_command(*svc, "suppress list " + scope + " " + limit + " " + after);
            REQUIRE(reply.rfind("ok: address,scope,reason,created,expires,event\n", 0) == 0);
            auto lines = split_list(reply, "\n");
            REQUIRE(lines.size() >= 2);
            REQUIRE(lines.back().rfind("next: ", 0) == 0);
            after = lines.back().substr(6);
            size_t rows = lines.size() - 2;
            CHECK(rows <= std::stoul(limit));
            for (size_t i = 1; i + 1 < lines.size(); ++i)
                seen.insert(lines[i].substr(0, lines[i].find(',')));
            if (after == "0") return seen;
        }
        FAIL("the walk did not end");
        return seen;
    };
    auto all = walk("*", "1");
    CHECK(all.size() == 8);
    CHECK(std::set<std::string>(all.begin(), all.end()).size() == 8);  // each exactly once
    CHECK(all.count("t@example.com") == 1);
    auto global = walk("-", "3");
    CHECK(global.size() == 7);
    CHECK(global.count("t@example.com") == 0);

    CHECK(suppression_command(*svc, "suppress list * 0").rfind("error: LIMIT", 0) == 0);
    CHECK(suppression_command(*svc, "suppress list * 5 x").rfind("error: AFTER", 0) == 0);
    CHECK(suppression_command(*svc, "suppress list * 5 0 extra").rfind("error: usage", 0) == 0);
    // A cursor past the end is an empty last page, not an error.
    auto past = suppression_command(*svc, "suppress list * 5 99999999999");
    CHECK(past == "ok: address,scope,reason,created,expires,event\nnext: 0\n");
}

// What one RCPT check costs with 1M entries (KASI_SUPPRESSION_N), a miss and a hit, the way
// SuppressionService::refusal looks up (global + domain:<sender domain>), next to the same
// lookup with the allocations the path used to make (a lower-cased std::string copy of the
// address, "domain:" + the lower-cased domain in a std::vector<std::string>). Hidden; run:
//   build/test/unit_suppression '[.lookup-cost]'
TEST_CASE("suppression lookup cost, with and without the per-call allocations", "[.lookup-cost]") {
    TempDir d;
    std::string err;
    auto s = SuppressionStore::open(d.path, SuppressionOptions{.background = false}, err);
    REQUIRE(s);
    size_t n = 1000000;
    if (const char* v = std::getenv("KASI_SUPPRESSION_N")) n = std::strtoull(v, nullptr, 10);
    std::vector<SuppressionEntry> batch;
    for (size_t i = 0; i < n; ++i) {
        batch.push_back(entry(fmt::format("u{}@suppressed{}.example", i, i % 1000), ""));
        if (batch.size() == 65536 || i + 1 == n) {
            REQUIRE(s->add(batch, err));
            batch.clear();
        }
    }
    std::vector<std::string> miss, hit;
    for (size_t i = 0; i < 200000; ++i) {
        miss.push_back(fmt::format("Recipient{}@Suppressed{}.example", i, i % 1000));
        hit.push_back(
            fmt::format("U{}@Suppressed{}.example", (i * 7919) % n, ((i * 7919) % n) % 1000));
    }
    std::string_view sender = "News.Sender.example";
    auto now_view = [&](const std::string& a) {
        SuppressionScopeName dom("domain:", sender, true);
        std::string_view scopes[1] = {dom.view()};
        return s->check(a, std::span<const std::string_view>(scopes, 1), 0).has_value();
    };
    auto old_way = [&](const std::string& a) {
        std::string norm = normalize_address(a);
        std::vector<std::string> scopes;
        scopes.push_back("domain:" + to_lower(sender));
        return s->check(norm, scopes, 0).has_value();
    };
    auto time_ns = [](const std::vector<std::string>& addrs, auto&& fn, size_t& found) {
        auto t0 = std::chrono::steady_clock::now();
        for (const auto& a : addrs) found += fn(a);
        auto dt = std::chrono::steady_clock::now() - t0;
        return double(std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count()) /
               double(addrs.size());
    };
    for (int round = 0; round < 3; ++round) {
        size_t f1 = 0, f2 = 0, f3 = 0, f4 = 0;
        double a = time_ns(miss, now_view, f1), b = time_ns(miss, old_way, f2);
        double c = time_ns(hit, now_view, f3), e = time_ns(hit, old_way, f4);
        CHECK(f1 == 0);
        CHECK(f2 == 0);
        CHECK(f3 == hit.size());
        CHECK(f4 == hit.size());
        std::printf(
            "%zu entries, round %d: miss %.0f ns (with the old allocations %.0f ns), "
            "hit %.0f ns (%.0f ns)\n",
            n, round + 1, a, b, c, e);
    }
}
