// The operator's commands on the suppression list, in the control socket's language (the
// admin HTTP API and kasictl speak it too). One line in, the reply text out ("ok: ..." or
// "error: ..."). Adds and removes are durable when the reply says ok, so run() blocks on
// fdatasync: the caller runs it off the event loops.
//
//   suppress check ADDRESS [SCOPE...]          the entry that stops it (global + SCOPEs)
//   suppress list [SCOPE|*] [LIMIT] [AFTER]    one entry per line, CSV (suppression_csv.h),
//                                              then "next: CURSOR": pass it as AFTER for
//                                              the next page (0: that was the last one)
//   suppress add ADDRESS [SCOPE|-] [REASON] [EXPIRES]
//                                              REASON default manual; EXPIRES a duration
//   suppress remove ADDRESS [SCOPE|-]          "-" is the global scope
#pragma once

#include <string>

namespace kasi {

class SuppressionService;

std::string suppression_command(SuppressionService& svc, const std::string& line);

}  // namespace kasi
