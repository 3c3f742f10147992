// The objects Lua hooks receive, shaped after Haraka's so plugin authors' knowledge
// carries over (docs/lua.md has the full list):
//   connection   - userdata over the live session (remote, hello, relaying, tls, notes,
//                  transaction); it holds a weak reference, so touching it after the
//                  client left is a Lua error, never a dangling pointer;
//   transaction  - userdata over the session's current transaction (mail_from, rcpt_to,
//                  notes, headers); stale once that transaction ends;
//   notes        - string-valued; what is set on a transaction is stored with the
//                  message in the spool and is visible to the outbound hooks;
//   hmail        - a snapshot table of a queued message for the outbound hooks.
#pragma once

#include <lua.hpp>

#include <string>
#include <vector>

#include "core/hooks/plugin.h"

namespace kasi {

void install_lua_objects(lua_State* L);  // metatables, once per state
// Pushes the hook's arguments (connection or hmail first); returns how many.
int push_hook_args(lua_State* L, HookCall& c);
// get_mx's OK answer: a string, or an array of strings or tables {exchange=, port=,
// priority=, using_lmtp=, bind=, bind_helo=, auth_user=, auth_pass=}.
bool next_hops_from_lua(lua_State* L, int idx, std::vector<NextHop>& out, std::string& err);
// A QueueLimits as {max_connections=, max_messages_per_connection=, max_message_rate=,
// max_recipients=, idle_timeout= (s), set_by=} (queue_limits' argument, kasi.queue.limits).
void push_limits(lua_State* L, const QueueLimits& l);
// queue_limits' OK answer: {max_connections=, max_messages_per_connection=,
// max_message_rate= (per second, or "100/min"), max_recipients=, idle_timeout= (s), set_by=}
bool limits_from_lua(lua_State* L, int idx, LimitOverride& o, std::string& err);
// classify_response's `OK, {reason=, class=, hard=, scope=, verdict='defer'|'bounce',
// delay=seconds}`: the fields given, checked for shape (names are checked against the
// rule set by the outcome stage).
bool response_override_from_lua(lua_State* L, int idx, ResponseOverride& o, std::string& err);
// inbound_report's `OK, {suppress=, scope=, reason=, expires=}` (docs/lua.md); false with
// `err` on an unknown field or a bad value.
bool report_override_from_lua(lua_State* L, int idx, ReportOverride& o, std::string& err);

}  // namespace kasi
