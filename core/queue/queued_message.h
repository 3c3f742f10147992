// What the outbound queue holds in memory for each spooled message: the envelope fields
// delivery needs and where the bytes are on disk, never the bytes themselves, so that a
// deferred message costs a few hundred bytes (docs/queues.md has the measurement).
//
// A message is delivered as one Delivery per recipient domain (per recipient with
// always_split): the unit that is scheduled, routed to a ready queue and sent in one SMTP
// transaction. The message is finished when its last Delivery is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/classify/classification.h"
#include "core/spool/envelope.h"

namespace kasi {

// Per-recipient state in memory. The last reply is shared: a mass deferral ("connection
// refused" for a whole site) stores one string, not a million copies.
struct QueuedRcpt {
    std::string address;
    RcptStatus status = RcptStatus::queued;
    bool deleted = false;  // by an operator: finished without a DSN
    std::shared_ptr<const std::string> last_reply;
    const std::string& reply() const {
        static const std::string none;
        return last_reply ? *last_reply : none;
    }
};

struct QueuedMessage {
    std::string id;
    int64_t received_ms = 0;
    std::string mail_from;  // "" for <>
    std::vector<QueuedRcpt> rcpts;
    void set_rcpts(const std::vector<std::string>& addrs) {
        rcpts.resize(addrs.size());
        for (size_t i = 0; i < addrs.size(); ++i) rcpts[i].address = addrs[i];
    }
    // What most messages lack costs a null pointer: tenant and campaign, the transaction
    // notes (all but kasi.*: routing notes such as queue.wants and queue.next_hop, and
    // whatever plugins set for their outbound hooks) and the MX that failed each bounced
    // recipient (the DSN's Remote-MTA), and what each failure meant (the DSN's
    // classification; after a restart the DSN classifies the recorded reply again).
    struct Extra {
        std::string tenant, campaign;
        std::vector<std::pair<std::string, std::string>> notes;
        std::vector<std::pair<uint32_t, std::string>> failed_mta;
        std::vector<std::pair<uint32_t, Classification>> failed_class;
    };
    std::unique_ptr<Extra> extra;
    Extra& more() {
        if (!extra) extra = std::make_unique<Extra>();
        return *extra;
    }
    const std::string& tenant() const { return extra ? extra->tenant : empty(); }
    const std::string& campaign() const { return extra ? extra->campaign : empty(); }
    void set_tags(const std::string& tenant, const std::string& campaign) {
        if (tenant.empty() && campaign.empty()) return;
        more().tenant = tenant;
        more().campaign = campaign;
    }
    const std::string* note(std::string_view key) const {
        if (extra)
            for (const auto& [k, v] : extra->notes)
                if (k == key) return &v;
        return nullptr;
    }
    static const std::string& empty() {
        static const std::string e;
        return e;
    }
    uint64_t segment = 0, body_offset = 0, body_size = 0;
    int attempts = 0;        // the most attempts any of its deliveries made
    int open_parts = 0;      // deliveries not finished yet
    bool is_dsn = false;     // a bounce we generated (never bounced itself)
    bool is_report = false;  // came to a report mailbox: read by the report transport
    bool cancelled = false;  // deleted by an operator
    bool warned = false;     // a delay warning went to the sender (not kept across restarts)
    bool recovered = false;  // loaded from the spool at start-up
};

// The scheduled queue a message's deliveries to `domain` wait in: "tenant/campaign/domain"
// (events and kasictl queue show it).
inline std::string scheduled_queue(const QueuedMessage& m, const std::string& domain) {
    return m.tenant() + "/" + m.campaign() + "/" + domain;
}

struct Delivery {
    std::shared_ptr<QueuedMessage> msg;
    std::string domain;           // lower-case, as written in the recipients
    std::vector<uint32_t> rcpts;  // indexes into msg->rcpts still to deliver
    int attempts = 0;
    int64_t due_ms = 0;
    int64_t ready_since_ms = 0;                 // when it entered its ready queue
    std::shared_ptr<const std::string> source;  // egress source of this attempt; null: default
};

}  // namespace kasi
