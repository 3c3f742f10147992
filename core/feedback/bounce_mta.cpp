#include "core/feedback/bounce_mta.h"

#include "core/util/strings.h"

namespace kasi {

namespace {

bool has_text(std::string_view value, std::string_view what) {
    return to_lower(value).find(to_lower(what)) != std::string::npos;
}

bool starts(std::string_view value, std::string_view what) {
    return istarts_with(trim(value), what);
}

bool ends_with_text(std::string_view value, std::string_view what) {
    auto v = to_lower(trim(value));
    return v.size() >= what.size() && v.compare(v.size() - what.size(), what.size(), what) == 0;
}

bool received_has(const mime::HeaderFields& h, std::string_view what) {
    for (auto r : h.all("Received"))
        if (has_text(r, what)) return true;
    return false;
}

bool google_daemon(const mime::HeaderFields& h) {
    return has_text(h.get("From"), "<mailer-daemon@googlemail.com>") &&
           has_text(h.get("Subject"), "Delivery Status Notification");
}

// Lines that start with "* " (Google Groups lists the four reasons a post may be refused).
int bullet_lines(std::string_view text) {
    int n = 0;
    size_t pos = 0;
    text = text.substr(0, 16384);
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        auto line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.substr(0, 1) == " ") line.remove_prefix(1);
        if (line.substr(0, 2) == "* ") ++n;
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    return n;
}

}  // namespace

std::string bounce_mta(const mime::HeaderFields& h, std::string_view text) {
    auto from = h.get("From");
    auto subject = mime::decode_words(h.get("Subject"));
    if (has_text(h.get("X-NAI-Header"), "Modified by McAfee")) return "mcafee";
    if (h.has("X-Msg-Ref") && has_text(from, "MAILER-DAEMON@messagelabs.com") &&
        starts(subject, "Mail Delivery Failure"))
        return "messagelabs";
    if (starts(from, "\"InterScan MSS\"") || starts(from, "\"InterScan Notification\"") ||
        trim(subject) == "Mail could not be delivered")
        return "interscanmss";
    if (starts(subject, "Undeliverable Mail ") || starts(h.get("X-Mailer"), "<SMTP32 v"))
        return "imailserver";
    if (starts(subject, "DELIVERY FAILURE:") || starts(subject, "DELIVERY_FAILURE:"))
        return "domino";
    if (has_text(from, "post_master@vtext.com") || received_has(h, ".vtext.com ("))
        return "verizon";
    // Notes writes this very subject, in this case ("Undeliverable Message" is others')
    if (trim(subject).substr(0, 21) == "Undeliverable message") return "notes";
    if (google_daemon(h) && h.has("X-Failed-Recipients") && h.has("X-Google-Smtp-Source") &&
        bullet_lines(text) == 4)
        return "googlegroups";
    if (google_daemon(h) && h.has("X-Gm-Message-State")) return "gsuite";
    if (google_daemon(h)) return "gmail";
    int ezweb = (has_text(from, "Postmaster@ezweb.ne.jp") || has_text(from, "Postmaster@au.com")) +
                (trim(subject) == "Mail System Error - Returned Mail") +
                received_has(h, "ezweb.ne.jp (EZweb Mail) with") + received_has(h, ".au.com (") +
                (ends_with_text(h.get("Message-Id"), ".ezweb.ne.jp>") ||
                 ends_with_text(h.get("Message-Id"), ".au.com>"));
    if (ezweb >= 2) return "ezweb";
    if ((has_text(from, "no-reply@") && has_text(from, ".dion.ne.jp")) ||
        iequals(trim(h.get("Reply-To")), "no-reply@app.auone-net.jp") ||
        received_has(h, "ezweb.ne.jp (") || received_has(h, ".au.com ("))
        return "kddi";
    if (h.has("X-AOL-IP")) return "aol";
    if (h.has("X-YMailISG")) return "yahoo";
    if (h.has("X-SES-Outgoing")) return "receivingses";
    int hotmail = (has_text(subject, "Delivery Status Notification") ? 1 : 0) +
                  (h.has("X-Message-Delivery") ? 1 : 0) + (h.has("X-Message-Info") ? 1 : 0) +
                  (received_has(h, ".hotmail.com") || has_text(from, "@hotmail.com") ? 1 : 0);
    if (hotmail >= 2) return "outlook";
    if (has_text(subject, "Email Delivery Failure") ||
        ends_with_text(h.get("Message-Id"), ".mimecast.lan>"))
        return "mimecast";
    return {};
}

std::string header_verdict(const mime::HeaderFields& h) {
    if (iequals(trim(h.get("X-SPASIGN")), "NG")) return "filtered";
    return {};
}

}  // namespace kasi
