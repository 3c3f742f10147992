// The narrow, typed interface between the hook runner and plugins (native now, Lua later).
// A plugin registers handlers for hooks; a handler receives a HookCall and either answers at
// once (returns a Result) or suspends (calls suspend(), returns nullopt) and answers later on
// the same loop through the PendingHook it was given. The runner owns the timeout.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/classify/classification.h"
#include "core/hooks/hook.h"
#include "core/hooks/queue_limits.h"
#include "core/hooks/seal_input.h"

namespace kasi {

class Session;
struct Address;
class HookRunner;
struct HookCall;

// Token for an asynchronous answer. resume() after the hook timed out, or after the session
// went away, is ignored (and logged at debug), as Haraka ignores a second next().
class PendingHook {
  public:
    PendingHook() = default;
    PendingHook(std::weak_ptr<HookRunner> r, uint64_t seq) : runner_(std::move(r)), seq_(seq) {}
    void resume(Result r) const;
    // The call being answered, while it still waits for this answer; null once the hook
    // timed out or its owner went away (then nothing it points to may be touched).
    HookCall* call() const;

  private:
    std::weak_ptr<HookRunner> runner_;
    uint64_t seq_ = 0;
};

struct QueuedMessage;

// One next hop a get_mx handler returns (Haraka's HarakaMx): parsed from "host",
// "host:port", "[ip]:port", "smtp://host:port" or "lmtp://host:port".
struct NextHop {
    std::string host;  // a name (resolved for A/AAAA) or an IP address
    uint16_t port = 25;
    bool lmtp = false;
    int priority = 0;
    std::string auth_user, auth_pass;
    bool auth_allow_cleartext = false;  // AUTH may go without TLS (else the delivery defers)
    std::string bind, bind_helo;        // local address and EHLO name for the connection
};
std::optional<NextHop> parse_next_hop(std::string_view text, std::string& err);

// What happened to a delivery, for the deferred, bounce and delivered hooks.
struct OutboundEvent {
    std::vector<std::string> rcpts;  // the recipients concerned
    int code = 0;                    // the reply (or the reply Kasi made up)
    std::string enhanced, text;
    int64_t delay_s = 0;   // deferred: the retry delay chosen; delivered: seconds since queued
    std::string host, ip;  // the MX host and address (delivered, and failures after connect)
    uint16_t port = 0;
    bool lmtp = false, tls = false, auth = false;
    std::string queue;  // the ready queue of the attempt ("" before one was chosen)
    // what the outcome means (classification.h): `classification` is the first
    // recipient's; `per_rcpt` is one per entry of `rcpts` when they differ (else empty)
    Classification classification;
    std::vector<Classification> per_rcpt;
};

// classify_response: the outcome of one delivery attempt for one recipient, the rules'
// classification of it, and the verdict Kasi is about to apply. Runs for failures only
// (not for 2xx), before the deferred/bounce hooks.
struct ResponseEvent {
    std::string rcpt, domain;
    OutcomeKind kind = OutcomeKind::reply;
    int code = 0;
    std::string enhanced, text, command;  // command: "CONNECT", "RCPT", "DATA", ...
    std::string host, ip;                 // the MX that answered, when connected
    Classification classification;
    Verdict verdict = Verdict::defer;
    int64_t retry_s = 0;  // defer: the delay planned (0 = the retry schedule decides)
};

// What a classify_response handler may change; unset fields keep the rules' answer.
// Reason and class names must be known to the rule set (else the change is ignored and
// logged); a 2xx is never turned into a failure nor a failure into a delivery.
struct ResponseOverride {
    std::optional<std::string> reason, cls;
    std::optional<bool> hard;
    std::optional<Scope> scope;
    std::optional<Verdict> verdict;  // defer or bounce
    std::optional<int64_t> retry_s;  // defer: retry after this many seconds
};

// inbound_report: one recipient of a report that came back to a report mailbox, matched to
// what Kasi sent (core/feedback/report_reader.h), and the suppression Kasi is about to add
// for it (`suppress` false: none, e.g. an auto-reply, a soft bounce under the threshold).
struct ReportEvent {
    std::string kind;  // "bounce", "auto_reply", "complaint"
    std::string report_id, report_from;
    std::string message_id, rcpt, tenant, sending_domain, matched_by;
    // a bounce or an auto-reply
    std::string action, status, diagnostic, remote_mta;
    int code = 0;
    Classification classification;
    // a complaint
    std::string feedback_type, source_ip, user_agent;
    // the planned suppression
    bool suppress = false;
    std::string scope, reason;  // scope "" = global; reason a suppression reason name
    int64_t expires = 0;        // unix seconds, 0 = never
};

// What an inbound_report handler may change (OK with a table); unset fields keep Kasi's
// plan. DENY vetoes the recipient altogether: no event, no suppression.
struct ReportOverride {
    std::optional<bool> suppress;
    std::optional<std::string> scope, reason;
    std::optional<int64_t> expires_in_s;  // from now; 0 = never
};

// The ready queue a queue_limits hook is asked about.
struct QueueInfo {
    std::string key, source, site, domain;  // domain: the one the queue was created for
    std::vector<std::string> mx_hosts;
    QueueLimits limits;  // what the configuration (outbound.ini) says
};

// What outbound hooks give back besides their code.
struct OutboundAnswer {
    std::vector<NextHop> mx;                   // get_mx with OK, in the order given (not sorted)
    std::optional<LimitOverride> limits;       // queue_limits with OK
    std::string source;                        // get_egress with OK
    std::optional<ResponseOverride> response;  // classify_response with OK, table
    std::optional<ReportOverride> report;      // inbound_report with OK, table
};

struct HookCall {
    Hook hook;
    Session* session;                  // null for the outbound hooks
    std::string_view arg;              // helo/ehlo host; the raw line for unrecognized_command
    const Address* address = nullptr;  // mail, rcpt, rcpt_ok
    // deny hook only: what was denied, by whom, in which hook
    const Result* denial = nullptr;
    std::string_view denied_by;
    Hook denied_hook = Hook::count_;
    // outbound hooks (send_email, get_mx): the message, the recipient domain, and
    // where a handler puts what it returns
    const QueuedMessage* hmail = nullptr;
    std::string_view domain;
    OutboundAnswer* outbound = nullptr;
    const OutboundEvent* event = nullptr;     // deferred, bounce, delivered
    const QueueInfo* queue = nullptr;         // queue_limits
    const ResponseEvent* response = nullptr;  // classify_response
    const ReportEvent* report = nullptr;      // inbound_report

    PendingHook suspend();  // call before returning nullopt
    // Suspends and answers `r` after `ms` on the loop (a banner pause, a tarpit); return
    // its value from the handler.
    std::optional<Result> answer_after(uint64_t ms, Result r);
    HookRunner* runner = nullptr;
};

using HookHandler = std::function<std::optional<Result>(HookCall&)>;

// The last steps before a relayed message is spooled, after every hook has run: header
// additions (List-Unsubscribe), envelope shaping (the VERP return path) and, last of all,
// signatures (DKIM), so that nothing changes a message once it is signed. Native plugins
// provide sealers; the session runs them in stage order.
class SealJob {
  public:
    virtual ~SealJob() = default;
    // Runs on libuv's thread pool when heavy() (RSA), else on the loop. Returns header
    // fields to put on top of `message`; on failure sets `err` (the message goes unsigned
    // and the failure is logged, as in Haraka).
    virtual std::string seal(std::string_view message, std::string& err) = 0;
    virtual bool heavy() const = 0;
};

class Sealer {
  public:
    enum Stage { headers = 0, envelope = 1, sign = 2 };
    virtual ~Sealer() = default;
    virtual Stage stage() const = 0;
    // On the loop: may edit the message (headers, notes); returns a job for the thread
    // pool, or null when there is nothing more to do.
    virtual std::unique_ptr<SealJob> prepare(SealInput& msg) const = 0;
};

class Plugin {
  public:
    virtual ~Plugin() = default;
    virtual std::string name() const = 0;
};

struct HookRegistration {
    Hook hook;
    int priority = 0;
    size_t order = 0;
    std::string plugin;
    HookHandler fn;
    uint32_t timeout_ms = 30000;  // 0 = none
    bool lua = false;             // a Lua plugin's handler (for the latency metric)
};

// All handlers of one config generation, sorted by (priority, registration order).
// Immutable once built and shared read-only by every loop.
struct ShapingRules;

class HookTable {
  public:
    void add(Hook h, std::string plugin, HookHandler fn, int priority = 0,
             uint32_t timeout_ms = 30000, bool lua = false);
    void finalize();
    const std::vector<HookRegistration>& at(Hook h) const { return by_hook_[int(h)]; }
    void keep(std::shared_ptr<Plugin> p) { plugins_.push_back(std::move(p)); }
    void add_sealer(std::shared_ptr<const Sealer> s);  // kept sorted by stage
    const std::vector<std::shared_ptr<const Sealer>>& sealers() const { return sealers_; }
    const std::vector<std::shared_ptr<Plugin>>& plugins() const { return plugins_; }
    // The automation rules of this generation (the `adaptive` plugin sets them; null: none,
    // nothing is shaped). core/shaping/shaping_engine.h applies them.
    void set_shaping_rules(std::shared_ptr<const ShapingRules> r) { shaping_ = std::move(r); }
    const std::shared_ptr<const ShapingRules>& shaping_rules() const { return shaping_; }

  private:
    std::vector<HookRegistration> by_hook_[hook_count];
    std::shared_ptr<const ShapingRules> shaping_;
    std::vector<std::shared_ptr<Plugin>> plugins_;
    std::vector<std::shared_ptr<const Sealer>> sealers_;
    size_t next_order_ = 0;
};

}  // namespace kasi
