#include "core/ctl/ctl_complaint.h"

#include <cstdio>

#include "core/feedback/arf_parser.h"
#include "core/util/file.h"
#include "core/util/json.h"

namespace kasi {

namespace {

// A report is read whole; a larger file is cut here (its start holds the report).
constexpr size_t kMaxReport = 64 << 20;

int usage_error() {
    std::fprintf(stderr,
                 "usage: kasictl [-c DIR] complaint parse FILE...\n"
                 "  prints one JSON line per complaining recipient (docs/complaints.md)\n");
    return 2;
}

std::string complaint_json(const std::string& file, const ComplaintReport& r,
                           const std::string& recipient) {
    JsonObject o;
    o.str("file", file).str("feedback_type", r.feedback_type).str("recipient", recipient);
    o.str("original_mail_from", r.original_mail_from).str("source_ip", r.source_ip);
    o.str("reported_domain", r.reported_domains.empty() ? std::string() : r.reported_domains[0]);
    o.str("user_agent", r.user_agent).str("arrival_date", r.arrival_date);
    o.str("original_message_id", r.original_message_id).str("format", r.format);
    return o.done() + "\n";
}

int parse_files(const std::vector<std::string>& files) {
    int rc = 0;
    for (const auto& f : files) {
        std::string raw, err;
        if (!read_file_capped(f, kMaxReport, raw, err)) {
            std::fprintf(stderr, "kasictl: %s: %s\n", f.c_str(), err.c_str());
            rc = 1;
            continue;
        }
        auto r = parse_complaint(raw);
        if (r.kind == ComplaintReport::Kind::not_complaint) {
            std::fprintf(stderr, "%s: not a complaint (%s)\n", f.c_str(), r.why.c_str());
            continue;
        }
        std::vector<std::string> who = r.recipients;
        if (who.empty()) who.emplace_back();
        for (const auto& rcpt : who) {
            auto line = complaint_json(f, r, rcpt);
            std::fwrite(line.data(), 1, line.size(), stdout);
        }
    }
    std::fflush(stdout);
    return rc;
}

}  // namespace

int ctl_complaint(const std::string& /*dir*/, const std::vector<std::string>& args) {
    if (args.size() < 2 || args[0] != "parse") return usage_error();
    return parse_files(std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace kasi
