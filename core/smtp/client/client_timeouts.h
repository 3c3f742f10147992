// How long the SMTP client waits for each step of a session, in milliseconds: RFC 5321
// §4.5.3.2's minimums by default. outbound.ini [timeouts] sets them
// (core/queue/outbound_config.h).
#pragma once

namespace kasi {

struct ClientTimeouts {
    int connect = 30000;
    int greeting = 300000;
    int ehlo = 300000;
    int starttls = 60000;
    int mail = 300000;
    int rcpt = 300000;
    int data_init = 120000;
    int data_block = 180000;
    int data_done = 600000;
};

}  // namespace kasi
