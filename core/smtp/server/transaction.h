// One mail transaction (MAIL ... end of DATA/BDAT LAST), as the hooks see it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/smtp/address.h"

namespace kasi {

struct Transaction {
    std::string uuid;  // "<connection uuid>.<n>"
    Address mail_from;
    std::vector<Address> rcpts;  // accepted recipients
    std::map<std::string, std::string> notes;
    std::string body;            // message bytes: CRLF, not dot-stuffed
    uint64_t declared_size = 0;  // SIZE= from MAIL
    bool smtputf8 = false;
    bool body_8bit = false;
    int rcpt_rejected = 0;
    bool data_started = false;  // DATA accepted (354) or first BDAT chunk taken
    bool bdat_failed = false;   // a BDAT chunk was refused: the rest are refused too
    bool wrapped_lines = false;
    bool too_big = false;
    // Its recipients are report mailboxes (core/feedback/report_mailboxes.h): the message is
    // a bounce or complaint for Kasi to read, never relayed or sealed. A transaction holds
    // report mailboxes or relayed recipients, not both.
    bool report = false;
};

}  // namespace kasi
