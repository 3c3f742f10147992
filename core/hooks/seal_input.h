// What the last steps before the spool (core/smtp/seal.h) and the sealers (plugin.h
// Sealer: DKIM) see of a message, whichever way it came: a relayed transaction (the SMTP
// session moves its body and notes in, and takes them back after) or mail Kasi writes
// itself (a DSN, core/queue/dsn_writer.cpp). Neither side depends on the other's types.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kasi {

struct SealInput {
    std::string id;                            // the transaction or message id, for log lines
    bool null_sender = false;                  // MAIL FROM:<>
    std::string sender_domain;                 // MAIL FROM's domain ("" for <>)
    std::vector<std::string> rcpts;            // envelope recipients
    std::map<std::string, std::string> notes;  // transaction notes (dkim.*, verp.*, ...)
    std::string body;                          // message bytes: CRLF, not dot-stuffed
};

}  // namespace kasi
