// Is this message an automatic reply (an out-of-office or vacation notice), not a bounce?
// RFC 3834 §5 says such replies carry `Auto-Submitted: auto-replied`; many responders
// instead mark themselves with X-Autoreply, X-Autorespond, X-Mail-Autoreply,
// `Precedence: auto_reply`, or only a subject ("Auto reply:", "Automatic reply:",
// "Out of Office", "Away", ...). An auto-reply means the address works: it is never a
// reason to suppress.
#pragma once

#include "core/mime/header_fields.h"

namespace kasi {

struct AutoReply {
    bool is = false;
    const char* why = "";  // which header said so
};

AutoReply auto_reply_of(const mime::HeaderFields& headers);

}  // namespace kasi
