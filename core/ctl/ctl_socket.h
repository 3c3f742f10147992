// kasictl's line over the running kasi's control socket (SPOOL/control.sock): one command
// line out, the whole reply back (kasi closes the connection after it).
#pragma once

#include <string>

namespace kasi {

// False with `err` when there is no answer; `refused` set when nothing listens there (kasi
// is not running).
bool ctl_socket_request(const std::string& spool, const std::string& line, std::string& reply,
                        std::string& err, bool* refused = nullptr);

}  // namespace kasi
