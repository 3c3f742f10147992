// kasictl bounce classify: the daemon's classifier (core/classify) on reply lines, for
// checking a rule before deploying it, or classifying replies collected elsewhere.
//
//   kasictl [-c DIR] bounce classify  < lines
//
// Each input line is `reply_code<TAB>enhanced_status<TAB>reply_text<TAB>remote_host`
// (an optional fifth field is the SMTP command: RCPT, DATA, ...); each output line, in the
// same order, `reason<TAB>class<TAB>hard|soft<TAB>scope<TAB>provider`. A line with fewer
// fields has the rest empty; a line that says nothing still gets a classification. The
// rules are the shipped ones plus, with -c, the operator's of DIR/config, exactly as the
// daemon loads them. Exit 0; 1 if the rules do not load (the message names file:line);
// 2 for a usage error.
#pragma once

#include <string>
#include <vector>

namespace kasi {

// `dir` is -c's value ("" for none); `args` the words after "bounce".
int ctl_bounce(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
