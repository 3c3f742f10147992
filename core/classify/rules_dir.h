// Where the rule data lives.
//
// Shipped data (rules/ in the source tree) is installed to <datadir>/kasi/rules, the
// same way lua/ is; a binary run from the build tree reads the source tree's copy:
//   1. $KASI_RULES_DIR if set (tests set it; an operator can point at a copy);
//   2. the installed directory, if it exists;
//   3. the source tree the binary was built from.
// The directory holds providers.tsv and classify/*.rules.
//
// The operator's own classification rules live in the config directory (DIR/config):
// classify.rules, then classify.d/*.rules in name order. They are tried before the shipped
// rules, so a rule there overrides a shipped one (docs/bounces.md).
#pragma once

#include <string>
#include <vector>

namespace kasi {

std::string default_rules_dir();

// Appends the operator's rule files that exist under `config_dir` (DIR/config) to `out`,
// in the order the classifier tries them; false (and err) if classify.d cannot be read.
bool operator_rule_files(const std::string& config_dir, std::vector<std::string>& out,
                         std::string& err);

}  // namespace kasi
