// kasictl complaint parse: the daemon's complaint parser (core/feedback/arf_parser.h) on
// messages saved to files, for checking what a feedback loop sends before wiring it up.
//
//   kasictl [-c DIR] complaint parse FILE...
//
// For each complaint, one JSON object per line per recipient who complained (one line
// with an empty recipient when the report names nobody):
//   {"file": FILE as given, "feedback_type", "recipient", "original_mail_from",
//    "source_ip", "reported_domain", "user_agent", "arrival_date",
//    "original_message_id", "format"}
// reported_domain is the first Reported-Domain (an ARF report may name several). A file
// that is not a complaint prints nothing on stdout and "FILE: not a complaint (why)" on
// stderr. No daemon, spool or config is needed (-c is accepted for symmetry with the other
// commands). Exit 0; 1 if a file cannot be read; 2 for a usage error.
#pragma once

#include <string>
#include <vector>

namespace kasi {

// `dir` is -c's value ("" for none); `args` the words after "complaint".
int ctl_complaint(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
