#include "core/feedback/auto_reply.h"

#include "core/util/strings.h"

namespace kasi {

AutoReply auto_reply_of(const mime::HeaderFields& h) {
    auto as = to_lower(trim(h.get("Auto-Submitted")));
    if (as.rfind("auto-replied", 0) == 0) return {true, "Auto-Submitted"};
    for (const char* name : {"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Mail-Autoreply",
                             "X-Autoreply-From", "X-Vacation"})
        if (h.has(name)) return {true, name};
    if (iequals(trim(h.get("Precedence")), "auto_reply")) return {true, "Precedence"};
    auto subject = to_lower(mime::decode_words(h.get("Subject")));
    for (std::string_view s :
         {"auto reply", "auto-reply", "autoreply", "automatic reply", "auto:", "out of office",
          "out of the office", "vacation", "away from", "abwesenheit", "réponse automatique",
          "respuesta automática", "risposta automatica"})
        if (subject.rfind(s, 0) == 0 || (s.size() > 6 && subject.find(s) != std::string::npos))
            return {true, "Subject"};
    return {};
}

}  // namespace kasi
