// The automation rules at work (shaping_rules.h says what a rule is). The delivery loop feeds
// every outcome it sees — a delivery, a deferral, a bounce, a refusal before any transaction —
// with the egress source, the sending domain and the provider; the engine counts the
// outcomes each rule matches per scope (source x provider, or sending domain x provider), and
// when a rule's threshold is reached within its window it starts (or escalates) an action on
// that pair. For 30 s after a trigger, matches only add evidence: the replies to attempts
// that were under way when the cut came must not escalate it. Each action remembers its rule, where
// the rule is written, its level, the last replies that triggered it (the evidence) and when it
// holds until; after the hold it steps back gradually and ends where it started. An action in force
// is what ready queues of that source at that provider apply on top of their configured limits
// (effect()), and what kasictl adaptive / the admin API / the queue summary show.
//
//   observe() ─ rule matches within window ─> trigger: cut / suspend / pool, event
//   tick()    ─ hold over ─> step back by `recover` every recover_every ─> end, event
//
// Outcomes of every pair are also counted per second over the last minute: a rate cut by a
// factor starts from what the pair actually sent. The engine runs on the delivery loop only
// (no lock). It reaches the ready queues through ShapingTarget, the one interface declared
// here, and writes Adaptive events through the function it is given. Actions survive a
// restart (save()/load(): QUEUE/adaptive.state).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/shaping/shaping_rules.h"

namespace kasi {

// Who applies what the engine decides: told when the effect on (source, provider) changed.
class ShapingTarget {
  public:
    virtual void shaping_changed(const std::string& source, const std::string& provider) = 0;

  protected:
    ~ShapingTarget() = default;
};

struct ShapingInput {
    enum class Kind { delivered, deferred, bounced, connection };
    Kind kind = Kind::delivered;
    std::string_view source, domain, provider;  // provider: "other" when none is known
    std::string_view cls;                       // the taxonomy's class
    std::string_view reply;                     // "CODE ENHANCED TEXT"
};

// What is in force for a pair, combined over its actions (the strictest of each).
struct ShapingEffect {
    double rate = 0;         // messages per second; 0 = not cut
    double conn_factor = 1;  // of the configured connection cap
    int connections = 0;     // a cap; 0 = none
    int messages_per_connection = 0;
    int64_t suspended_until_ms = 0;
    std::string pool;  // new traffic goes to this egress pool
    std::string why;   // "adaptive RULE level N until T" of each action
};

class ShapingEngine {
  public:
    ShapingEngine(ShapingTarget& target, std::function<void(const std::string&)> event)
        : target_(target), event_(std::move(event)) {}

    // A new generation's rules; actions of rules that no longer exist end.
    void set_rules(std::shared_ptr<const ShapingRules> rules, int64_t now_ms);
    bool active() const { return rules_ && !rules_->rules.empty(); }

    void observe(const ShapingInput& in, int64_t now_ms);
    void tick(int64_t now_ms);  // every second: holds end, actions step back

    // The effect on (source, provider), and on (sending domain, provider); none if nothing.
    std::optional<ShapingEffect> effect(std::string_view source, std::string_view provider) const;
    std::optional<ShapingEffect> domain_effect(std::string_view domain,
                                               std::string_view provider) const;

    // {"rules": N, "actions": [...]} (docs/adaptive.md)
    std::string json(int64_t now_ms) const;
    size_t actions() const { return actions_.size(); }

    std::string save() const;
    // Reads what save() wrote; actions of rules not in the current set are dropped later by
    // set_rules. False with `err` for a file that is not a state file (lines that do not
    // parse are skipped).
    bool load(std::string_view text, int64_t now_ms, std::string& err);

    struct Action {
        std::string rule, origin;
        bool domain_scope = false;
        std::string subject, provider;  // the source (or sending domain) and the provider
        int level = 0;
        double rate = 0, base_rate = 0, conn_factor = 1;
        int connections = 0, messages_per_connection = 0;
        int64_t suspended_until_ms = 0, started_ms = 0, last_trigger_ms = 0, hold_until_ms = 0,
                next_step_ms = 0;
        std::string pool;
        std::deque<std::pair<int64_t, std::string>> evidence;  // the last replies, newest last
    };

  private:
    struct Pair {  // a scope's recent activity
        std::map<std::string, std::deque<int64_t>, std::less<>> matches;  // rule -> times
        uint32_t sent[60] = {};  // outcomes per second, a ring indexed by second % 60
        int64_t last_sec = 0;    // the newest second counted (slots older than 60 s are 0)
        int64_t first_sec = 0;   // the first second counted: a young pair's rate is over its age
    };
    static std::string pair_key(bool domain_scope, std::string_view subject,
                                std::string_view provider);
    void count_attempt(Pair& p, int64_t now_ms);
    double observed_rate(const Pair& p, int64_t now_ms) const;
    bool matches(const ShapingRule& r, const ShapingInput& in) const;
    void trigger(const ShapingRule& r, bool domain_scope, std::string_view subject,
                 std::string_view provider, const ShapingInput& in, const Pair& p, int64_t now);
    bool step_back(Action& a, const ShapingRule& r, int64_t now);
    const ShapingRule* rule(const std::string& name) const;
    void emit(const char* what, const Action& a, int64_t now) const;
    void changed(const Action& a);
    std::optional<ShapingEffect> combined(bool domain_scope, std::string_view subject,
                                          std::string_view provider) const;

    ShapingTarget& target_;
    std::function<void(const std::string&)> event_;
    std::shared_ptr<const ShapingRules> rules_;
    bool scoped_[2] = {false, false};  // some rule counts per source [0], per domain [1]
    std::map<std::string, Pair, std::less<>> pairs_;      // pair key -> activity
    std::map<std::string, Action, std::less<>> actions_;  // pair key + "|" + rule -> action
    int64_t last_sweep_ms_ = 0;
};

}  // namespace kasi
