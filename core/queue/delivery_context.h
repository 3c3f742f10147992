// What the stages of one delivery loop share (one per loop, DESIGN §2.1): the loop, the
// configuration in force, the DNS resolver, the message bytes (body_store.h), the event
// log, the spool journal, the outbound hooks and the counters. The QueueManager owns it and
// replaces the settings at a reload; every stage holds a reference.
//
// Nothing here decides anything about a message; the stages do, in this order:
//   scheduler.h -> router.h -> ready_queues.h -> outcome.h -> dsn_writer.h
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "core/queue/body_store.h"
#include "core/queue/events.h"
#include "core/queue/journal.h"
#include "core/queue/outbound_config.h"
#include "core/queue/outbound_hooks.h"
#include "core/shaping/tenant_breaker.h"

namespace kasi {

class Resolver;
class Spool;
class SuppressionService;
class ReputationService;

struct QueueSettings {
    std::shared_ptr<const OutboundConfig> cfg;
    std::shared_ptr<const HookTable> hooks;  // get_mx, ... (config/plugins)
    SSL_CTX* tls_ctx = nullptr;              // outbound TLS client context (owned by the caller)
    std::string me;                          // EHLO name and Reporting-MTA
    SuppressionService* suppressions = nullptr;  // the list (process-long; null: none)
    ReputationService* reputation = nullptr;     // the matrix (process-long; null: off)
};

struct QueueStats {
    uint64_t messages = 0, scheduled = 0, routing = 0, ready = 0, in_flight = 0;
    uint64_t delivered = 0, deferred = 0, bounced = 0, expired = 0, dsns = 0;
    uint64_t connections = 0;
};

class DeliveryContext {
  public:
    DeliveryContext(uv_loop_t* loop, Spool& spool, QueueSettings s);
    ~DeliveryContext();
    DeliveryContext(const DeliveryContext&) = delete;
    DeliveryContext& operator=(const DeliveryContext&) = delete;

    // A reload: new settings (and a new resolver when the DNS servers changed).
    void set_settings(QueueSettings s);
    const OutboundConfig& cfg() const { return *settings.cfg; }

    // One shared copy of a string many recipients carry (a reply line, a source name):
    // a mass deferral stores one string, not a million.
    std::shared_ptr<const std::string> intern(std::string s);
    // A message has left the queue: its spool segment may go.
    void release(const QueuedMessage& m) {
        bodies.message_finished(m.segment);
        --stats.messages;
    }

    uv_loop_t* const loop;
    const std::string spool_dir;
    QueueSettings settings;
    std::shared_ptr<Resolver> resolver;
    BodyStore bodies;
    EventLog events;
    Journal journal;
    OutboundHooks hooks;
    // Per-tenant circuit breakers: the outcome stage and the report transport feed them, the
    // scheduler holds what they stop (core/shaping/tenant_breaker.h).
    TenantBreaker breaker{[this](const std::string& json) { events.other(json); }};
    QueueStats stats;
    bool shutting_down = false;
    // False once the QueueManager is being destroyed: callbacks that arrive later (a hook's
    // answer, a spool write) check it through a weak_ptr and do nothing.
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  private:
    std::unordered_map<std::string, std::shared_ptr<const std::string>> intern_;
};

}  // namespace kasi
