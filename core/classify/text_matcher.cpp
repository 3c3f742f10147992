#include "core/classify/text_matcher.h"

#include <algorithm>

#include <re2/re2.h>
#include <re2/set.h>

namespace kasi {

namespace {

constexpr size_t kShardPatterns = 256;
constexpr int64_t kShardMemory = 16 << 20;

RE2::Options matcher_options() {
    RE2::Options o;
    o.set_encoding(RE2::Options::EncodingLatin1);
    o.set_log_errors(false);
    o.set_max_mem(kShardMemory);
    return o;
}

std::string re2_source(const TextPattern& p) {
    return p.regex ? "(?i:" + p.text + ")" : RE2::QuoteMeta(p.text);
}

}  // namespace

struct TextMatcher::Shard {
    size_t first = 0;  // id of the shard's first pattern
    std::unique_ptr<RE2::Set> set;
    std::vector<std::unique_ptr<RE2>> singles;  // the fallback
};

TextMatcher::TextMatcher() = default;
TextMatcher::~TextMatcher() = default;
TextMatcher::TextMatcher(TextMatcher&&) noexcept = default;
TextMatcher& TextMatcher::operator=(TextMatcher&&) noexcept = default;

int TextMatcher::add(const TextPattern& p) {
    auto it = std::find(patterns_.begin(), patterns_.end(), p);
    if (it != patterns_.end()) return int(it - patterns_.begin());
    patterns_.push_back(p);
    return int(patterns_.size() - 1);
}

bool TextMatcher::compile(std::string& err) {
    shards_.clear();
    RE2::Options o = matcher_options();
    for (size_t first = 0; first < patterns_.size(); first += kShardPatterns) {
        auto sh = std::make_unique<Shard>();
        sh->first = first;
        sh->set = std::make_unique<RE2::Set>(o, RE2::UNANCHORED);
        size_t end = std::min(patterns_.size(), first + kShardPatterns);
        for (size_t i = first; i < end; ++i) {
            std::string src = re2_source(patterns_[i]), why;
            if (sh->set->Add(src, &why) < 0) {
                err = "bad regex /" + patterns_[i].text + "/: " + why;
                return false;
            }
            sh->singles.push_back(std::make_unique<RE2>(src, o));
        }
        if (!sh->set->Compile()) {
            err = "the text patterns do not fit RE2's memory budget";
            return false;
        }
        shards_.push_back(std::move(sh));
    }
    return true;
}

void TextMatcher::match(std::string_view text, std::vector<uint8_t>& matched) const {
    matched.assign(patterns_.size(), 0);
    std::vector<int> hits;
    for (const auto& sh : shards_) {
        hits.clear();
        RE2::Set::ErrorInfo info{};
        if (sh->set->Match(text, &hits, &info)) {
            for (int h : hits) matched[sh->first + size_t(h)] = 1;
        } else if (info.kind != RE2::Set::kNoError) {
            for (size_t i = 0; i < sh->singles.size(); ++i)
                if (RE2::PartialMatch(text, *sh->singles[i])) matched[sh->first + i] = 1;
        }
    }
}

}  // namespace kasi
