// systemd's readiness protocol (sd_notify(3)), for Type=notify units: one datagram of
// "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract
// name when it starts with '@'). Written here rather than linking libsystemd: the protocol is
// a documented datagram and this is all of it. Without $NOTIFY_SOCKET it does nothing.
#pragma once

#include <string_view>

namespace kasi {

// Sends `state` ("READY=1\nSTATUS=...", "RELOADING=1", "STOPPING=1"); false if
// $NOTIFY_SOCKET is set but the datagram could not be sent.
bool sd_notify_state(std::string_view state);

}  // namespace kasi
