// The suppression store at size: 200k entries in every run; 10 million on demand (hidden
// tag [.memory], figures in docs/suppression.md):
//   build-test/test/unit_suppression '[.memory]'
// Environment: KASI_SUPPRESSION_N (entries, default 10000000), KASI_SUPPRESSION_EVENTS
// (`kasi`: every entry has a Kasi event id "<UUID>.<n>", the default; `raw`: a 36-byte id
// of another form; `none`).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "core/suppression/suppression_store.h"
#include "test/unit/temp_dir.h"

using namespace kasi;
namespace fs = std::filesystem;

namespace {

using kasi::test::TempDir;

constexpr const char* firsts[] = {"maria",   "john",  "wei",  "fatima", "olga", "james", "ana",
                                  "mohamed", "sofia", "li",   "peter",  "emma", "noah",  "aisha",
                                  "lucas",   "mia",   "ivan", "chloe",  "omar", "hannah"};
constexpr const char* lasts[] = {"garcia", "smith",  "wang",   "khan",   "ivanova",
                                 "brown",  "silva",  "ali",    "rossi",  "chen",
                                 "muller", "jones",  "kim",    "haddad", "martin",
                                 "lopez",  "petrov", "dubois", "yilmaz", "schmidt"};
constexpr const char* providers[] = {"gmail.com",   "yahoo.com",  "hotmail.com",
                                     "outlook.com", "icloud.com", "gmx.de"};

enum class Events { kasi, raw, none };

// A plausible recipient list: provider domains and a long tail of company domains, 1 in 5
// entries in a tenant scope, reasons mixed as an ESP's list would have them.
SuppressionEntry synthetic(uint64_t i, Events ev) {
    SuppressionEntry e;
    uint64_t h = i * 0x9E3779B97F4A7C15ull;
    std::string domain = (h >> 40) % 10 < 6 ? std::string(providers[(h >> 20) % 6])
                                            : fmt::format("company{}.example", (h >> 8) % 20000);
    e.address = fmt::format("{}.{}{}@{}", firsts[i % 20], lasts[(i / 20) % 20], i, domain);
    e.scope = (h >> 33) % 5 == 0 ? fmt::format("tenant:t{}", (h >> 13) % 200) : "";
    static constexpr SuppressionReason mix[] = {
        SuppressionReason::hard_bounce, SuppressionReason::hard_bounce,
        SuppressionReason::hard_bounce, SuppressionReason::hard_bounce,
        SuppressionReason::unsubscribe, SuppressionReason::unsubscribe,
        SuppressionReason::import,      SuppressionReason::import,
        SuppressionReason::complaint,   SuppressionReason::manual};
    e.reason = mix[(h >> 50) % 10];
    e.created = 1700000000 + int64_t(i % 30000000);
    if (ev == Events::kasi)
        e.event = fmt::format("{:08X}-{:04X}-4{:03X}-A{:03X}-{:012X}.{}", uint32_t(h >> 32),
                              uint32_t(h >> 16) & 0xffff, uint32_t(h >> 4) & 0xfff,
                              uint32_t(h >> 20) & 0xfff, i, i % 7);
    else if (ev == Events::raw)
        e.event = fmt::format("evt_{:032x}", h ^ (h >> 17));
    return e;
}

long status_kb(const char* field) {  // VmRSS, VmHWM, ... of this process
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field) + 1);
    return -1;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

SuppressionOptions quiet() {
    SuppressionOptions o;
    o.background = false;
    return o;
}

bool add_synthetic(SuppressionStore& s, uint64_t n, Events ev) {
    std::vector<SuppressionEntry> batch;
    std::string err;
    for (uint64_t i = 0; i < n; ++i) {
        batch.push_back(synthetic(i, ev));
        if (batch.size() == 65536 || i + 1 == n) {
            if (!s.add(batch, err)) {
                fmt::print("add: {}\n", err);
                return false;
            }
            batch.clear();
        }
    }
    return true;
}

// Runs `fn` in a child process (clean malloc state for the figures); true if it returned
// true.
template <class F>
bool in_child(F fn) {
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) {
        bool ok = fn();
        std::fflush(stdout);
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

TEST_CASE("suppression store: 200k entries found, missed, and reloaded") {
    TempDir d;
    constexpr uint64_t n = 200000;
    {
        std::string err;
        auto s = SuppressionStore::open(d.path, quiet(), err);
        REQUIRE(s);
        REQUIRE(add_synthetic(*s, n, Events::kasi));
        CHECK(s->size() == n);
        size_t bytes_per_entry = s->stats().memory_bytes / n;
        INFO(bytes_per_entry);
        CHECK(bytes_per_entry < 128);  // chunk granularity included; 65 at 10M
    }
    std::string err;
    auto s = SuppressionStore::open(d.path, quiet(), err);
    REQUIRE(s);
    CHECK(s->size() == n);
    size_t found = 0, wrong = 0, false_hits = 0;
    for (uint64_t i = 0; i < n; ++i) {
        SuppressionEntry want = synthetic(i, Events::kasi);
        auto got = s->find(want.scope, want.address, 0);
        found += bool(got);
        wrong += got && !(*got == want);
        // Each address is on the list once, in one scope: elsewhere it must miss.
        false_hits += bool(s->find(want.scope.empty() ? "tenant:t1" : "", want.address, 0));
        false_hits += bool(s->find(want.scope, "x" + want.address, 0));
    }
    CHECK(found == n);
    CHECK(wrong == 0);
    CHECK(false_hits == 0);
    uint64_t by_reason = 0;
    for (auto r : all_suppression_reasons) by_reason += s->count(r);
    CHECK(by_reason == n);
    CHECK(s->count(SuppressionReason::hard_bounce) > n / 3);
}

TEST_CASE("suppression store: memory and load time at 10 million entries", "[.memory]") {
    const char* env_n = std::getenv("KASI_SUPPRESSION_N");
    const char* env_ev = std::getenv("KASI_SUPPRESSION_EVENTS");
    uint64_t n = env_n ? std::strtoull(env_n, nullptr, 10) : 10000000;
    std::string ev_name = env_ev ? env_ev : "kasi";
    Events ev = ev_name == "raw" ? Events::raw : ev_name == "none" ? Events::none : Events::kasi;
    TempDir d;
    fmt::print("suppression [.memory]: {} entries, event ids: {}\n", n, ev_name);

    CHECK(in_child([&] {
        long base = status_kb("VmRSS:");
        auto t0 = std::chrono::steady_clock::now();
        std::string err;
        auto s = SuppressionStore::open(d.path, quiet(), err);
        if (!s || !add_synthetic(*s, n, ev)) return false;
        auto st = s->stats();
        fmt::print(
            "  add:  {:.1f} s ({:.0f} entries/s, {} syncs), journal {} MB, RSS {} MB "
            "(process before open: {} MB)\n",
            seconds_since(t0), double(n) / seconds_since(t0), st.syncs, st.journal_bytes >> 20,
            status_kb("VmRSS:") >> 10, base >> 10);
        return s->size() == n;
    }));

    CHECK(in_child([&] {
        long base = status_kb("VmRSS:");
        auto t0 = std::chrono::steady_clock::now();
        std::string err;
        auto s = SuppressionStore::open(d.path, quiet(), err);
        if (!s) {
            fmt::print("open: {}\n", err);
            return false;
        }
        double load = seconds_since(t0);
        long rss = status_kb("VmRSS:"), hwm = status_kb("VmHWM:");
        auto st = s->stats();
        fmt::print(
            "  load: {:.1f} s; RSS {} MB (process before open: {} MB; {:.0f} bytes/entry), "
            "peak {} MB; table estimate {} MB\n",
            load, rss >> 10, base >> 10, double(rss - base) * 1024 / double(n), hwm >> 10,
            st.memory_bytes >> 20);
        // Lookup cost, one thread: check() with the global scope and one tenant, for
        // addresses on the list (a copy of the entry comes back) and not on it.
        constexpr uint64_t probes = 1000000;
        std::vector<std::string> on, off;
        size_t want = 0;  // entries of tenants other than t7 are not hits
        for (uint64_t i = 0; i < probes; ++i) {
            SuppressionEntry e = synthetic((i * 7919) % n, Events::none);
            want += e.scope.empty() || e.scope == "tenant:t7";
            on.push_back(std::move(e.address));
            off.push_back(fmt::format("nobody{}@gmail.com", i));
        }
        const std::vector<std::string> scopes = {"tenant:t7"};
        auto t1 = std::chrono::steady_clock::now();
        size_t hits = 0, false_hits = 0;
        for (const auto& a : on) hits += s->check(a, scopes, 0).has_value();
        double hit_ns = seconds_since(t1) * 1e9 / probes;
        auto t2 = std::chrono::steady_clock::now();
        for (const auto& a : off) false_hits += s->check(a, scopes, 0).has_value();
        double miss_ns = seconds_since(t2) * 1e9 / probes;
        fmt::print(
            "  check(): {:.0f} ns per address on the list, {:.0f} ns per address not "
            "on it\n",
            hit_ns, miss_ns);
        return s->size() == n && hits == want && false_hits == 0;
    }));
}
