#include "core/feedback/delivery_status.h"

#include "core/classify/status_code.h"
#include "core/mime/header_fields.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

std::string_view strip_brackets(std::string_view s) {
    s = trim(s);
    if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
    return trim(s);
}

bool recipient_field(std::string_view name) {
    return iequals(name, "Final-Recipient") || iequals(name, "Original-Recipient");
}

void apply(DsnRecipientFields& r, const mime::Field& f) {
    const auto& n = f.name;
    if (iequals(n, "Final-Recipient")) {
        r.final_recipient = strip_type(f.value);
    } else if (iequals(n, "Original-Recipient")) {
        r.original_recipient = strip_type(f.value);
    } else if (iequals(n, "Action")) {
        r.action = to_lower(trim(f.value.substr(0, f.value.find_first_of(" ("))));
    } else if (iequals(n, "Status")) {
        // only a well-formed x.y.z: a damaged one says nothing (the reply may say more)
        auto v = trim(std::string_view(f.value).substr(0, f.value.find_first_of(" (")));
        StatusCode sc;
        r.status = parse_status(v, sc) ? std::string(v) : std::string();
    } else if (iequals(n, "Remote-MTA")) {
        r.remote_mta = strip_type(f.value);
    } else if (iequals(n, "Diagnostic-Code")) {
        auto semi = f.value.find(';');
        if (semi != std::string::npos && semi < 16) {
            r.diagnostic_type = to_lower(trim(std::string_view(f.value).substr(0, semi)));
            r.diagnostic = std::string(trim(std::string_view(f.value).substr(semi + 1)));
        } else {
            r.diagnostic = f.value;
        }
    } else if (iequals(n, "X-PowerMTA-BounceCategory")) {
        r.bounce_category = to_lower(trim(f.value));
    } else if (iequals(n, "Last-Attempt-Date")) {
        r.last_attempt = f.value;
    }
}

}  // namespace

std::string strip_type(std::string_view value) {
    auto semi = value.find(';');
    if (semi != std::string_view::npos && semi < 16) value = value.substr(semi + 1);
    return std::string(strip_brackets(value));
}

DeliveryStatus parse_delivery_status(std::string_view body) {
    DeliveryStatus ds;
    size_t pos = 0;
    // Blocks until the text ends; a block with a recipient field is a recipient's. A block
    // without an empty line between recipients (seen) is split at each Final-Recipient.
    while (pos < body.size() && ds.recipients.size() < 1000) {
        while (pos < body.size() && (body[pos] == '\n' || body[pos] == '\r')) ++pos;
        if (pos >= body.size()) break;
        size_t used = 0;
        auto block = mime::parse_fields(body.substr(pos), used, 200);
        if (used == 0) {  // a line that is not a field: skip it
            size_t nl = body.find('\n', pos);
            pos = nl == std::string_view::npos ? body.size() : nl + 1;
            continue;
        }
        pos += used;
        DsnRecipientFields* cur = nullptr;
        for (const auto& f : block.fields) {
            if (iequals(f.name, "Reporting-MTA")) {
                ds.reporting_mta = strip_type(f.value);
                continue;
            }
            if (iequals(f.name, "Received-From-MTA")) {
                ds.received_from_mta = strip_type(f.value);
                continue;
            }
            if (recipient_field(f.name) &&
                (!cur || (iequals(f.name, "Final-Recipient") && !cur->final_recipient.empty()) ||
                 (iequals(f.name, "Original-Recipient") && !cur->original_recipient.empty()))) {
                ds.recipients.emplace_back();
                cur = &ds.recipients.back();
            }
            if (cur) apply(*cur, f);
        }
    }
    // A block that only had an Original-Recipient takes it as final too.
    for (auto& r : ds.recipients)
        if (r.final_recipient.empty()) r.final_recipient = r.original_recipient;
    return ds;
}

bool has_dsn_fields(std::string_view text) {
    std::string lower = to_lower(text.substr(0, std::min<size_t>(text.size(), 1 << 20)));
    for (std::string_view key : {"final-recipient:", "original-recipient:"}) {
        size_t pos = 0;
        while ((pos = lower.find(key, pos)) != std::string::npos) {
            if (pos == 0 || lower[pos - 1] == '\n') return true;
            pos += key.size();
        }
    }
    return false;
}

}  // namespace kasi
