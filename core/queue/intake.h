// Where every accepted message enters the system, whichever way it came (SMTP or the HTTP
// API): its envelope and bytes go to the spool, and once they are durable (the group commit
// has synced them) the delivery loop gets what it needs to schedule the message. Only then
// does the caller acknowledge (250 after DATA, 2xx from the API).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/smtp/server/transaction.h"
#include "core/spool/spool.h"

namespace kasi {

class Outbound;

// Who handed the message in, for the envelope (Received-style provenance and events).
struct IntakeSource {
    std::string client_ip, helo, auth_user;
    bool tls = false;
    bool relaying = false;
    bool http = false;  // came through the HTTP API (metrics)
};

// Moves `txn.body` into the spool. `done` runs on the spool writer's thread with the
// outcome; by then a durable message has already been handed to `outbound` (may be null).
void spool_and_queue(Spool& spool, Outbound* outbound, Transaction& txn, const IntakeSource& src,
                     std::function<void(const SpoolResult&)> done);

}  // namespace kasi
