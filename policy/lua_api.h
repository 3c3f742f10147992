// The `kasi` table every Lua plugin sees, and Haraka's return codes as globals
// (CONT, STOP, OK, DENY, DENYSOFT, DENYDISCONNECT, DENYSOFTDISCONNECT, DISCONNECT, DELAY):
//   kasi.log.debug/info/notice/warn/error(...)   print() goes to kasi.log.info
//   kasi.now()                                   epoch seconds (fractional)
//   kasi.sleep(seconds)                          yields to the loop
//   kasi.dns.mx/a/aaaa/txt/ptr(name)             yields; records, or nil and the status
//   kasi.config.get(name) / list(name) / ini(name)  files of DIR/config, read once per
//                                                generation through Kasi's INI reader
// Functions that yield work only inside hooks (a hook is a coroutine); in a plugin's main
// chunk they raise a clear error.
#pragma once

#include <uv.h>
#include <lua.hpp>

namespace kasi {

void install_kasi_api(lua_State* L);

// Closes what the policy API still has pending on `loop` (kasi.sleep timers and
// kasi.http.request requests whose hook was abandoned, kasi.redis links), on the loop's thread,
// before the loop is closed; the loop's owner runs the loop once more afterwards for the close
// callbacks.
void lua_close_loop(uv_loop_t* loop);

}  // namespace kasi
