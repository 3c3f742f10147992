// kasictl's admin commands over the HTTP API (core/http/api_admin.cpp) when config/http.ini
// has a plain `listen` address; the control socket otherwise (or with --socket). The
// request goes to the first plain listener (a wildcard address becomes loopback), with
// "Authorization: Bearer $KASI_API_TOKEN" when that variable is set; the API's trusted
// networks need no token.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kasi {

// The admin command `cmd` with its words over HTTP: prints the answer as the control
// socket would ("ok: ..." / "error: ..."); returns the exit status. nullopt when the API
// is not configured (the caller uses the socket).
std::optional<int> ctl_http(const std::string& dir, const std::string& cmd,
                            const std::vector<std::string>& args);

}  // namespace kasi
