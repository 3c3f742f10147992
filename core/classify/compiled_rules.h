// The classifier's compiled form (private to core/classify): what classifier_build.cpp
// makes of the parsed rule files and classifier.cpp evaluates. Names are resolved to
// indexes once, so classifying compares integers and reads a bit per text pattern.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/classify/classifier.h"
#include "core/classify/rule_file.h"
#include "core/classify/text_matcher.h"

namespace kasi {

constexpr int kTargetStatus = -1;  // rule @status
constexpr int kTargetCode = -2;    // rule @code

struct CompiledCond {
    CondKey key = CondKey::text;
    bool negate = false;
    int pattern = -1;                     // text: the TextMatcher id
    std::vector<StatusPattern> statuses;  // status
    std::vector<CodePattern> codes;       // code
    std::vector<std::string> words;       // command, kind, provider, host
    std::vector<int> ids;                 // means: reason indexes; says: group indexes
};

struct CompiledRule {
    int target = 0;  // a reason index, kTargetStatus or kTargetCode
    std::vector<CompiledCond> conds;
    std::optional<std::string> cls;
    std::optional<bool> hard;
    std::optional<Scope> scope;
    std::string where;  // "file:line"
};

struct ReasonInfo {
    std::string cls;
    bool hard = false;
    Scope scope = Scope::recipient;
};

struct TableRow {
    int reason = 0;
    std::string where;
};

struct Classifier::Impl {
    std::vector<ReasonInfo> reasons;  // indexed like known_reasons()
    std::vector<StatusPattern> status_patterns;
    std::vector<TableRow> status_rows;  // parallel to status_patterns
    std::vector<CodePattern> code_patterns;
    std::vector<TableRow> code_rows;
    std::vector<std::vector<int>> groups;  // group index -> pattern ids
    std::vector<CompiledRule> rules;
    TextMatcher matcher;
};

// The reason's index in known_reasons(), or -1.
int reason_index(std::string_view name);

}  // namespace kasi
