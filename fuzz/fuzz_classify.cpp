// The bounce classifier (core/classify/classifier.h) on reply lines, and the rule-file
// parser (rule_file.h) on rule files: a reply is whatever a remote server sends (any
// bytes, any length), a rule file whatever an operator writes. Input: the first byte picks
// what the rest is; then, as kasictl bounce classify reads it,
//   code<TAB>status<TAB>text<TAB>host<TAB>command  (a reply, outcome kind from the byte)
// or a rule file. Properties: every outcome gets a reason and class of the bounded sets, a
// provider and the rule that decided; a temporary (4xx) failure is never hard; the same
// input classifies the same twice; a refused rule file names a line within the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/classify/classifier.h"
#include "core/classify/rule_file.h"
#include "core/classify/taxonomy.h"
#include "fuzz/fuzz_check.h"

namespace {

const kasi::Classifier& classifier() {
    static auto c = [] {
        std::string err;
        auto r = kasi::Classifier::load(kasi::ClassifierSources{KASI_SOURCE_RULES_DIR, {}}, err);
        if (!r) {
            std::fprintf(stderr, "fuzz_classify: %s\n", err.c_str());
            std::abort();
        }
        return r;
    }();
    return *c;
}

std::string_view next_field(std::string_view& rest) {
    size_t tab = rest.find('\t');
    std::string_view f = rest.substr(0, tab);
    rest = tab == std::string_view::npos ? std::string_view() : rest.substr(tab + 1);
    return f;
}

int parse_code(std::string_view s) {
    int code = 0;
    for (char c : s.substr(0, 4)) {
        if (c < '0' || c > '9') return 0;
        code = code * 10 + (c - '0');
    }
    return code;
}

void check_reply(uint8_t selector, std::string_view rest) {
    kasi::ClassifyInput in;
    in.kind = kasi::OutcomeKind(selector % 7);
    in.code = parse_code(next_field(rest));
    in.enhanced = next_field(rest);
    in.text = next_field(rest);
    in.remote_host = next_field(rest);
    in.command = next_field(rest);
    in.domain = rest;
    kasi::Classification c = classifier().classify(in);
    FUZZ_CHECK(kasi::is_known_reason(c.reason));
    FUZZ_CHECK(kasi::is_known_class(c.cls));
    FUZZ_CHECK(!c.provider.empty() && !c.rule.empty());
    if (in.code >= 400 && in.code < 500) FUZZ_CHECK(!c.hard);
    if (in.kind == kasi::OutcomeKind::reply && in.code >= 200 && in.code < 300)
        FUZZ_CHECK(c.reason == "delivered");
    kasi::Classification again = classifier().classify(in);
    FUZZ_CHECK(again.reason == c.reason && again.cls == c.cls && again.hard == c.hard &&
               again.scope == c.scope && again.rule == c.rule);
}

void check_rule_file(std::string_view text) {
    kasi::RuleSet rs;
    std::string err;
    if (kasi::parse_rule_file(text, "fuzz.rules", rs, err)) return;
    FUZZ_CHECK(err.rfind("fuzz.rules:", 0) == 0);
    long line = std::strtol(err.c_str() + 11, nullptr, 10);
    long lines = 1;
    for (char c : text) lines += c == '\n';
    FUZZ_CHECK(line >= 1 && line <= lines);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] & 0x80)
        check_rule_file(rest);
    else
        check_reply(data[0], rest);
    return 0;
}
