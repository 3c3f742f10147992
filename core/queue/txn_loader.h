// The step between a ready queue and its SMTP connection: a delivery becomes the
// transaction the client sends (OutTxn). The message bytes are read from the spool
// (body_store.h, off the loop), dot-stuffed once, and the envelope is filled in: the
// recipients of this delivery and the MAIL FROM, which is a per-recipient VERP address
// (verp.h) when the message has a VERP return path. The transaction's result goes to the
// outcome stage (outcome.h).
#pragma once

#include <functional>
#include <string>

#include "core/queue/body_store.h"
#include "core/queue/outbound_config.h"
#include "core/smtp/client/smtp_client.h"

namespace kasi {

// The message's VERP return-path domain (its note verp.domain) when VERP is configured and
// the message can have one (not a DSN, not a null sender); else null. Such a message is
// sent one recipient per transaction.
const std::string* verp_return_domain(const OutboundConfig& cfg, const QueuedMessage& m);

// Reads `d`'s message and calls cb(true, transaction) on the loop, or cb(false, {}) when
// the spool could not be read (logged).
void load_transaction(BodyStore& bodies, const OutboundConfig& cfg, const Delivery& d,
                      std::function<void(bool ok, OutTxn)> cb);

}  // namespace kasi
