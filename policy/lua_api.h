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

#include <lua.hpp>

namespace kasi {

void install_kasi_api(lua_State* L);

}  // namespace kasi
