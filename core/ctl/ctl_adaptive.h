// kasictl -c DIR adaptive [--json]: the automation rules' actions in force (docs/adaptive.md)
// — per pair, the rule and where it is written, its level, what it cut and until when, and
// the replies that triggered it — asked of the running kasi (admin API or control socket).
#pragma once

#include <string>
#include <vector>

namespace kasi {

int ctl_adaptive(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
