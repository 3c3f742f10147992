// Per-tenant circuit breakers: one tenant whose list is bad (hard bounces), whose mail is
// reported (complaints) or blocked must not spoil the IPs and domains every other tenant
// shares. Each tenant has a three-state breaker:
//
//   closed     mail flows; outcomes are counted over the last `window_s` (one-minute
//              buckets). Once at least min_attempts were made, a hard-bounce, complaint or
//              block rate at or over its threshold opens the breaker
//   open       the tenant's deliveries are held in the scheduled queue (not attempted, not
//              lost: they wait like deferred mail, up to max_age) for open_s
//   half-open  one delivery in 1/probe goes (a probe), the rest stay held; after
//              probe_attempts outcomes the rates decide: under every threshold -> closed,
//              else open again for twice as long (at most 8 x open_s)
//
// An operator may pause a tenant (held until resumed, whatever the rates) or resume it
// (closed, counts cleared). Every change writes a CircuitBreaker event (tenant, state, the
// reason with the rates) and shows in kasictl tenant list, the admin API and the metric
// kasi_tenant_breaker_state. Thresholds: BreakerPolicy, from the adaptive plugin's data
// (docs/adaptive.md), with per-tenant overrides. States survive a restart (save/load).
// Delivery loop only; no lock.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace kasi {

struct BreakerLimits {
    int64_t window_s = 3600;
    uint32_t min_attempts = 100;
    double hard_bounce_rate = 0.05;  // of attempts
    double complaint_rate = 0.003;   // of attempts (deliveries)
    double block_rate = 0.2;         // deferrals and bounces of class reputation_block/spam_block
    int64_t open_s = 1800;
    double probe = 0.1;  // share of deliveries let through while half-open
    uint32_t probe_attempts = 20;
};

struct BreakerPolicy {
    bool automatic = false;  // trips on rates (the adaptive plugin); pause/resume always work
    BreakerLimits defaults;
    std::map<std::string, BreakerLimits, std::less<>> tenants;  // overrides
    const BreakerLimits& limits_for(std::string_view tenant) const {
        auto it = tenants.find(tenant);
        return it == tenants.end() ? defaults : it->second;
    }
};

class TenantBreaker {
  public:
    enum class State { closed, open, half_open, paused };
    // async_hard_bounce and complaint come back later (reports): they count against the
    // tenant but are not attempts.
    enum class Outcome {
        delivered,
        deferred,
        hard_bounce,
        soft_bounce,
        block,
        complaint,
        async_hard_bounce
    };

    explicit TenantBreaker(std::function<void(const std::string&)> event)
        : event_(std::move(event)) {}
    void set_policy(std::shared_ptr<const BreakerPolicy> p) { policy_ = std::move(p); }

    void record(std::string_view tenant, Outcome o, int64_t now_ms);
    // May a delivery of `tenant` go now? (closed: yes; open/paused: no; half-open: a probe)
    bool allow(std::string_view tenant, int64_t now_ms);
    bool any_held() const { return held_; }
    // Forgets closed tenants with nothing in their window (every minute or so).
    void sweep(int64_t now_ms);

    // The operator's commands; the answer for kasictl ("ok: ..." / "error: ...").
    std::string pause(const std::string& tenant, const std::string& reason, int64_t now_ms);
    std::string resume(const std::string& tenant, int64_t now_ms);
    // {"tenants": [{"tenant", "state", "since_ms", "until_ms", "reason", "attempts", ...}]}
    // for every tenant not closed, and the closed ones with counts when `all`.
    std::string json(int64_t now_ms, bool all) const;
    std::string prometheus() const;  // a gauge per tenant that is not closed

    std::string save() const;  // paused, open and half-open tenants
    bool load(std::string_view text, int64_t now_ms, std::string& err);

    static std::string_view state_name(State s);

  private:
    struct Minute {
        int64_t minute = -1;
        uint32_t attempts = 0, hard = 0, blocks = 0, complaints = 0;
    };
    struct Tenant {
        State state = State::closed;
        std::array<Minute, 60> minutes{};  // the window, in one-minute buckets (a ring)
        int64_t since_ms = 0, until_ms = 0, open_ms = 0;
        uint32_t probes_seen = 0, probe_ticket = 0;
        std::string reason;
    };
    struct Rates {
        uint64_t attempts = 0, hard = 0, blocks = 0, complaints = 0;
    };
    Rates totals(const Tenant& t, const BreakerLimits& l, int64_t now_ms) const;
    std::string tripped(const Rates& r, const BreakerLimits& l) const;  // "" = under limits
    void move(const std::string& name, Tenant& t, State s, int64_t now_ms, std::string reason);
    void refresh_held();

    std::function<void(const std::string&)> event_;
    std::shared_ptr<const BreakerPolicy> policy_;
    std::map<std::string, Tenant, std::less<>> tenants_;
    bool held_ = false;  // some tenant is not closed
};

}  // namespace kasi
