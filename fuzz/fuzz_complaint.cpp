// The complaint parser (core/feedback/arf_parser.h parse_complaint): what a feedback loop,
// or anyone writing to the complaint address, sends. Input: a whole message (or JSON, an
// SES notification). Properties (complaint_report.h): every string is one line, at most
// 100 recipients and 20 X-Kasi-* headers, a complaint has a feedback type and a format, a
// refusal says why; the same input gives the same report twice.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/feedback/arf_parser.h"
#include "fuzz/fuzz_check.h"

namespace {

bool all_one_line(const kasi::ComplaintReport& r) {
    using kasi::fuzz::one_line;
    bool ok = one_line(r.why) && one_line(r.format) && one_line(r.feedback_type) &&
              one_line(r.original_mail_from) && one_line(r.source_ip) && one_line(r.user_agent) &&
              one_line(r.arrival_date) && one_line(r.reporting_mta) &&
              one_line(r.original_message_id) && one_line(r.original_envelope_id) &&
              one_line(r.original_return_path);
    for (const auto& a : r.recipients) ok = ok && one_line(a) && !a.empty();
    for (const auto& d : r.reported_domains) ok = ok && one_line(d);
    for (const auto& [n, v] : r.original_kasi_headers) ok = ok && one_line(n) && one_line(v);
    return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view m(reinterpret_cast<const char*>(data), size);
    auto r = kasi::parse_complaint(m);
    FUZZ_CHECK(all_one_line(r));
    FUZZ_CHECK(r.recipients.size() <= 100);
    FUZZ_CHECK(r.original_kasi_headers.size() <= 20);
    if (r.kind == kasi::ComplaintReport::Kind::complaint) {
        FUZZ_CHECK(!r.feedback_type.empty() && !r.format.empty());
    } else {
        FUZZ_CHECK(!r.why.empty());
    }
    auto again = kasi::parse_complaint(m);
    FUZZ_CHECK(again.kind == r.kind && again.recipients == r.recipients &&
               again.original_mail_from == r.original_mail_from);
    return 0;
}
