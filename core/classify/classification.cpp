#include "core/classify/classification.h"

namespace kasi {

std::string_view outcome_kind_name(OutcomeKind k) {
    switch (k) {
        case OutcomeKind::reply:
            return "reply";
        case OutcomeKind::connect:
            return "connect";
        case OutcomeKind::timeout:
            return "timeout";
        case OutcomeKind::dns:
            return "dns";
        case OutcomeKind::tls:
            return "tls";
        case OutcomeKind::protocol:
            return "protocol";
        case OutcomeKind::local:
            return "local";
    }
    return "reply";
}

std::string_view scope_name(Scope s) {
    switch (s) {
        case Scope::recipient:
            return "recipient";
        case Scope::message:
            return "message";
        case Scope::sender:
            return "sender";
        case Scope::destination:
            return "destination";
    }
    return "recipient";
}

}  // namespace kasi
