// The last steps of every relayed message before the spool, whichever way it came in (SMTP
// or the HTTP API): List-Unsubscribe, the VERP return path, then the sealers of the config
// (core/hooks/plugin.h: DKIM last, so that nothing changes a message once it is signed).
// They work on a SealInput (core/hooks/seal_input.h), not on the session's transaction.
//
// A heavy job (RSA signing) goes to libuv's thread pool with the message bytes moved into
// it, so the loop keeps serving other connections; the bytes come back with the result.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/hooks/seal_input.h"

namespace kasi {

class HookTable;
struct ServerConfig;

// Runs the steps on `msg`, then done(msg) on the loop (synchronously when no job is
// heavy). The caller checks in `done` whether the message is still wanted (its owner may
// have gone meanwhile; nothing was acknowledged).
void seal_relayed(uv_loop_t* loop, std::shared_ptr<const ServerConfig> cfg, SealInput msg,
                  std::function<void(SealInput)> done);

// Mail Kasi writes itself (DSNs, delay warnings): the sealers of `hooks` only, every job
// on this thread (such mail is rare). Returns the sealers' errors, for the caller's log.
std::vector<std::string> seal_generated(const HookTable& hooks, SealInput& msg);

// The single steps (seal_relayed runs them first).
void add_unsubscribe(SealInput& msg, const ServerConfig& cfg);
void choose_return_path(SealInput& msg, const ServerConfig& cfg);

}  // namespace kasi
