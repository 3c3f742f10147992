// The bounce parser (core/feedback/bounce_parser.h) and the MIME reader under it
// (core/mime): a report is whatever anyone sends to a return path. Input: a message.
// The mbox splitter of kasictl bounce parse too.
// Properties: parsing ends (bounded by the MIME limits), a report of kind not_bounce names
// no recipient and says why, every recipient has an address and a reason of the bounded
// set, a temporary status is never hard, and the same input parses the same twice.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/classify/classifier.h"
#include "core/classify/taxonomy.h"
#include "core/feedback/bounce_parser.h"
#include "core/feedback/mbox.h"
#include "core/mime/mime_tree.h"
#include "fuzz/fuzz_check.h"

namespace {

const kasi::BounceParser& parser() {
    static kasi::BounceParser p([] {
        std::string err;
        auto c = kasi::Classifier::load(kasi::ClassifierSources{KASI_SOURCE_RULES_DIR, {}}, err);
        if (!c) {
            std::fprintf(stderr, "fuzz_bounce: %s\n", err.c_str());
            std::abort();
        }
        return c;
    }());
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view raw(reinterpret_cast<const char*>(data), size);
    auto m = kasi::mime::parse_message(raw);
    FUZZ_CHECK(m.parts <= kasi::mime::Limits{}.max_parts + 1);
    auto r = parser().parse(raw);
    if (r.kind == kasi::BounceReport::Kind::not_bounce) {
        FUZZ_CHECK(r.recipients.empty());
        FUZZ_CHECK(!r.why.empty());
    }
    for (const auto& b : r.recipients) {
        FUZZ_CHECK(!b.recipient.empty());
        FUZZ_CHECK(kasi::is_known_reason(b.classification.reason));
        if (!b.status.empty() && b.status[0] == '4') FUZZ_CHECK(!b.classification.hard);
    }
    auto again = parser().parse(raw);
    FUZZ_CHECK(again.recipients.size() == r.recipients.size());
    // an mbox of reports (kasictl bounce parse splits files): pieces of the input, in order
    size_t at = 0;
    for (auto piece : kasi::mbox_messages(raw)) {
        FUZZ_CHECK(piece.data() >= raw.data() + at);
        FUZZ_CHECK(piece.data() + piece.size() <= raw.data() + raw.size());
        at = size_t(piece.data() - raw.data()) + piece.size();
    }
    return 0;
}
