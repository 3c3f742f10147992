// Listening sockets, created (and bind errors reported) on the main thread before the
// workers start. Each worker loop watches its own dup() of every listening socket; the
// loops race to accept, and libuv treats a lost race (EAGAIN) as nothing. No SO_REUSEPORT:
// a second process on the same address must fail to start, not share the traffic.
#pragma once

#include <string>

#include "core/config/settings.h"

namespace kasi {

// Returns a listening fd, or -1 with `err` set.
int open_listen_socket(const ListenAddr& a, std::string& err);

}  // namespace kasi
