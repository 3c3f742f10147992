// The last steps of every relayed message before the spool, whichever way it came in (SMTP
// or the HTTP API): List-Unsubscribe, the VERP return path, then the sealers of the config
// (core/hooks/plugin.h: DKIM last, so that nothing changes a message once it is signed).
//
// A heavy job (RSA signing) goes to libuv's thread pool with the message bytes moved into
// it, so the loop keeps serving other connections; the bytes come back with the result. The
// transaction is found again through `locate` afterwards: if its owner has gone (the client
// left) the result is dropped, since nothing was acknowledged.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>

#include "core/smtp/server/transaction.h"

namespace kasi {

struct ServerConfig;

using TxnLocator = std::function<Transaction*()>;  // null: the owner is gone

// Runs the steps, then `done` (synchronously when no job is heavy). `done` is not called
// when the owner went away meanwhile.
void seal_transaction(uv_loop_t* loop, std::shared_ptr<const ServerConfig> cfg, TxnLocator locate,
                      std::function<void()> done);

// The single steps (seal_transaction runs them first).
void add_unsubscribe(Transaction& txn, const ServerConfig& cfg);
void choose_return_path(Transaction& txn, const ServerConfig& cfg);

}  // namespace kasi
