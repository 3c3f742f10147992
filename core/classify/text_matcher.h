// Finds which of many texts (phrases and regexes of the rule files) occur in a reply, in
// one pass per few hundred patterns, in time linear in the text whatever the patterns:
// RE2 (no backtracking), its Set API (one DFA walk matches every pattern of a shard), and
// the text capped by reply_text.h.
//
// Patterns are compiled once, when the classifier loads. A phrase is matched as a literal
// (RE2::QuoteMeta), a regex case-insensitively; both byte-wise (Latin-1 mode), so invalid
// UTF-8 in a reply is just bytes and a UTF-8 phrase matches its own bytes. If a shard's
// DFA ever exceeds its memory budget, that shard falls back to one RE2 per pattern
// (each still linear), so the answer never depends on memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/classify/rule_file.h"

namespace re2 {
class RE2;
}

namespace kasi {

class TextMatcher {
  public:
    TextMatcher();
    ~TextMatcher();
    TextMatcher(TextMatcher&&) noexcept;
    TextMatcher& operator=(TextMatcher&&) noexcept;

    // The pattern's id; the same pattern added twice has one id.
    int add(const TextPattern& p);
    size_t size() const { return patterns_.size(); }
    // After the last add(); false (and err) if RE2 refuses a pattern.
    bool compile(std::string& err);
    // matched is resized to size(); matched[id] = 1 if pattern id occurs in `text`.
    void match(std::string_view text, std::vector<uint8_t>& matched) const;

  private:
    struct Shard;
    std::vector<TextPattern> patterns_;
    std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace kasi
