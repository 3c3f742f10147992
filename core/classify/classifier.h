// The classifier: one function from a delivery outcome to its Classification
// (classification.h), driven entirely by rule data (rule_file.h, docs/bounces.md).
//
// Loading. The shipped rules (<rules_dir>/classify/*.rules, in name order, and
// <rules_dir>/providers.tsv) and the operator's files (rules_dir.h) are parsed, checked
// as a whole and compiled once: every text of every phrase and rule goes into one
// TextMatcher. Any error in any file fails the load with "path:line: message" and no
// classifier, so a daemon keeps the rules it runs with and `kasi --check-config` can
// report the line. A loaded Classifier is immutable: share it (shared_ptr<const>) between
// threads and swap the pointer on reload.
//
// Classifying, in this order:
//   1. a 2xx reply is "delivered" at once (no text is read);
//   2. the text is folded and capped (reply_text.h); the enhanced status is the given one,
//      else the first one in the text; every pattern is matched in one pass;
//   3. the rules are tried in order, the operator's first, then the shipped files in name
//      order; the first rule whose conditions all hold decides. Its reason's defaults
//      (the `reason` lines) give class, hard and scope unless the rule overrides them;
//   4. a temporary failure (4xx code, or a 4.x.x status without a code) is never hard:
//      the server itself says the address may work later.
// The shipped rules end with catch-alls (the status table, the code table, "onhold" for a
// text nothing recognised, "undefined" for nothing at all), so every input gets an answer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/classify/classification.h"
#include "core/classify/provider_table.h"

namespace kasi {

struct ClassifierSources {
    std::string rules_dir;                    // shipped data: classify/*.rules, providers.tsv
    std::vector<std::string> operator_files;  // tried before the shipped rules, in this order

    // default_rules_dir() and the operator's files of `config_dir` (DIR/config).
    static bool for_config(const std::string& config_dir, ClassifierSources& out, std::string& err);
};

class Classifier {
  public:
    // nullptr and err = "path:line: message" (or "path: message") on any error.
    static std::shared_ptr<const Classifier> load(const ClassifierSources& src, std::string& err);
    // The shipped rules alone, from default_rules_dir(): tests, and kasictl without -c.
    static std::shared_ptr<const Classifier> load_shipped(std::string& err);

    Classification classify(const ClassifyInput& in) const;
    // What a reason found elsewhere (a DSN parser, sisimai's output) means here: the
    // reason's defaults from the `reason` lines, hard only for a permanent failure, the
    // provider of `host`. An unknown reason is "undefined". rule = "reason".
    Classification for_reason(std::string_view reason, int code = 0, std::string_view enhanced = {},
                              std::string_view host = {}) const;

    const ProviderTable& providers() const { return *providers_; }
    size_t rule_count() const;

    struct Impl;
    ~Classifier();
    Classifier(std::unique_ptr<Impl> impl, std::shared_ptr<const ProviderTable> providers);

  private:
    std::unique_ptr<Impl> impl_;
    std::shared_ptr<const ProviderTable> providers_;
};

}  // namespace kasi
