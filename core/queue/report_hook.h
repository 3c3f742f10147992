// The inbound_report hook between reading a report and acting on it: what a plugin is told
// about one matched recipient (ReportEvent, core/hooks/plugin.h) and how its answer changes
// what Kasi does for that recipient.
//
//   answer                 effect for that recipient
//   CONT (or nothing)      Kasi's plan: the event, and the suppression the policy planned
//   OK                     the same
//   OK, {suppress=, scope=, reason=, expires=}
//                          the plan changed: suppress=false drops the planned suppression,
//                          suppress=true adds one where the policy planned none (reason by
//                          default complaint, hard_bounce or soft_bounce after the report's
//                          kind, manual for an auto-reply); scope, reason, expires (seconds
//                          from now, 0 = never) change the entry
//   DENY                   vetoed: no event, no suppression (logged)
//   anything else          Kasi's plan (logged)
// A change that names an unknown reason or a bad scope is ignored and logged: the plan stands.
#pragma once

#include <optional>
#include <string>

#include "core/feedback/report_reader.h"
#include "core/hooks/plugin.h"
#include "core/suppression/suppression_entry.h"

namespace kasi {

class SuppressionService;

// What a plugin sees about match `m` of `out`, with the suppression planned for it.
ReportEvent report_event(const ReportOutcome& out, const ReportMatch& m, const ReportInput& in,
                         const std::optional<SuppressionEntry>& planned);

struct ReportAction {
    bool vetoed = false;  // no event, no suppression
    std::optional<SuppressionEntry> suppress;
};

// The plan after answer `r` (with `ans`, what the handler returned besides its code).
// `svc` makes a new entry as the policy would; null (no list) ignores suppress=true.
ReportAction apply_report_answer(const Result& r, const OutboundAnswer& ans, const ReportEvent& ev,
                                 std::optional<SuppressionEntry> planned,
                                 const SuppressionService* svc, int64_t now);

}  // namespace kasi
