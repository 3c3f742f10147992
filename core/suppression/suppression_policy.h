// suppression.ini: whether Kasi keeps a suppression list, where, and what adds to it. The
// policy part is reloaded with the rest of the configuration; the store's directory is
// read at start only.
//
//   [main]
//   enabled = true            ; the embedded list (default on)
//   dir = suppression         ; relative to the spool directory (queue_dir), where the
//                             ; node keeps its state (the package's /var/spool/kasi)
//   at_reception = refuse     ; refuse: 550 at RCPT; accept: take the message and drop the
//                             ; recipient before delivery (both with a Suppressed event)
//   [policy]
//   hard_bounce = true        ; a hard bounce (sync or async) suppresses the address
//   complaint = true          ; an ARF complaint does
//   unsubscribe = true        ; a one-click unsubscribe does
//   soft_bounce_threshold = 3 ; this many soft bounces of one address ...
//   soft_bounce_window = 7d   ; ... within this time suppress it too (0: never)
//   scope = global            ; global | tenant | domain: where automatic entries go
//   hard_bounce_expires = 0   ; how long an entry lasts (0: for ever), per reason
//   complaint_expires = 0
//   unsubscribe_expires = 0
//   soft_bounce_expires = 30d
//   [postgres]                ; share the list between nodes (suppression_replica.h); read
//                             ; at start only; without dsn the list is the node's own
//   dsn = host=db1 port=5432 dbname=kasi user=kasi   ; libpq's connection string
//   poll_interval = 1s        ; how often each node pulls others' changes (the staleness
//                             ; bound while PostgreSQL is up)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/config/config_dir.h"
#include "core/config/diagnostics.h"
#include "core/suppression/suppression_entry.h"

namespace kasi {

struct SuppressionPolicy {
    enum class Scope { global, tenant, domain };
    bool enabled = true;
    std::string dir;  // absolute
    bool refuse_at_rcpt = true;
    bool hard_bounce = true, complaint = true, unsubscribe = true;
    int soft_bounce_threshold = 3;
    int64_t soft_bounce_window_s = 7 * 86400;
    Scope scope = Scope::global;
    int64_t hard_bounce_ttl_s = 0, complaint_ttl_s = 0, unsubscribe_ttl_s = 0;
    int64_t soft_bounce_ttl_s = 30 * 86400;
    std::string pg_dsn;  // empty: not shared (never logged: it may hold a password)
    int64_t pg_poll_ms = 1000;

    // The scope an automatic entry about a message of `tenant` from `sending_domain` gets.
    std::string scope_for(const std::string& tenant, const std::string& sending_domain) const;
    int64_t ttl_for(SuppressionReason r) const;

    // `spool_dir`: the settings' queue_dir, which a relative `dir` is under.
    static std::shared_ptr<const SuppressionPolicy> load(const ConfigDir& cfg,
                                                         const std::string& spool_dir,
                                                         Diagnostics& d);
};

}  // namespace kasi
