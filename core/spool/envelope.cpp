#include "core/spool/envelope.h"

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

namespace {

void put(std::string& out, std::string_view key, std::string_view value) {
    out += key;
    out += " =";
    out += escape_token(value);
    out += '\n';
}

// Calls fn(key, value) for each "key =value" line; false on a malformed line.
template <class Fn>
bool each_line(std::string_view text, std::string& err, Fn fn) {
    size_t start = 0;
    std::string value;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        auto line = text.substr(start, nl - start);
        start = nl + 1;
        if (line.empty()) continue;
        size_t sp = line.find(" =");
        if (sp == std::string_view::npos || !unescape_token(line.substr(sp + 2), value)) {
            err = fmt::format("malformed envelope line: {}", line.substr(0, 80));
            return false;
        }
        if (!fn(line.substr(0, sp), value)) {
            err = fmt::format("bad value in envelope line: {}", line.substr(0, 80));
            return false;
        }
    }
    return true;
}

bool to_i64(const std::string& v, int64_t& out) {
    unsigned long long u;
    bool neg = !v.empty() && v[0] == '-';
    if (!parse_u64(neg ? std::string_view(v).substr(1) : std::string_view(v), u)) return false;
    out = neg ? -int64_t(u) : int64_t(u);
    return true;
}

}  // namespace

std::string Envelope::serialize() const {
    std::string out;
    out.reserve(256 + rcpts.size() * 40);
    put(out, "id", id);
    put(out, "received", std::to_string(received_ms));
    put(out, "from", mail_from);
    for (const auto& r : rcpts) put(out, "rcpt", r);
    if (!client_ip.empty()) put(out, "client_ip", client_ip);
    if (!helo.empty()) put(out, "helo", helo);
    if (!auth_user.empty()) put(out, "auth_user", auth_user);
    if (tls) put(out, "tls", "1");
    if (relaying) put(out, "relaying", "1");
    if (!tenant.empty()) put(out, "tenant", tenant);
    if (!campaign.empty()) put(out, "campaign", campaign);
    for (const auto& [k, v] : notes) put(out, "note." + k, v);
    for (const auto& [k, v] : extra) put(out, k, v);
    return out;
}

bool Envelope::parse(std::string_view text, Envelope& e, std::string& err) {
    e = Envelope{};
    bool ok = each_line(text, err, [&](std::string_view k, const std::string& v) {
        if (k == "id")
            e.id = v;
        else if (k == "received")
            return to_i64(v, e.received_ms);
        else if (k == "from")
            e.mail_from = v;
        else if (k == "rcpt")
            e.rcpts.push_back(v);
        else if (k == "client_ip")
            e.client_ip = v;
        else if (k == "helo")
            e.helo = v;
        else if (k == "auth_user")
            e.auth_user = v;
        else if (k == "tls")
            e.tls = v == "1";
        else if (k == "relaying")
            e.relaying = v == "1";
        else if (k == "tenant")
            e.tenant = v;
        else if (k == "campaign")
            e.campaign = v;
        else if (k.starts_with("note."))
            e.notes[std::string(k.substr(5))] = v;
        else
            e.extra[std::string(k)] = v;
        return true;
    });
    if (ok && (e.id.empty() || e.rcpts.empty())) {
        err = "envelope without id or recipients";
        return false;
    }
    return ok;
}

std::string_view rcpt_status_name(RcptStatus s) {
    switch (s) {
        case RcptStatus::queued:
            return "queued";
        case RcptStatus::delivered:
            return "delivered";
        case RcptStatus::deferred:
            return "deferred";
        case RcptStatus::failed:
            return "failed";
    }
    return "?";
}

std::string StateUpdate::serialize() const {
    std::string out;
    put(out, "id", id);
    put(out, "at", std::to_string(at_ms));
    if (done) put(out, "done", "1");
    if (attempts >= 0) put(out, "attempts", std::to_string(attempts));
    if (next_due_ms >= 0) put(out, "next_due", std::to_string(next_due_ms));
    for (const auto& [i, st] : rcpts)
        put(out, "rcpt", fmt::format("{} {} {}", i, int(st.status), st.last_reply));
    if (!event.empty()) put(out, "event", event);
    return out;
}

bool StateUpdate::parse(std::string_view text, StateUpdate& u, std::string& err) {
    u = StateUpdate{};
    bool ok = each_line(text, err, [&](std::string_view k, const std::string& v) {
        int64_t n = 0;
        if (k == "id")
            u.id = v;
        else if (k == "done")
            u.done = v == "1";
        else if (k == "at")
            return to_i64(v, u.at_ms);
        else if (k == "attempts") {
            if (!to_i64(v, n)) return false;
            u.attempts = int(n);
        } else if (k == "next_due")
            return to_i64(v, u.next_due_ms);
        else if (k == "rcpt") {
            size_t a = v.find(' '), b = a == std::string::npos ? a : v.find(' ', a + 1);
            unsigned long long idx, st;
            if (b == std::string::npos || !parse_u64(std::string_view(v).substr(0, a), idx) ||
                !parse_u64(std::string_view(v).substr(a + 1, b - a - 1), st) || st > 3)
                return false;
            u.rcpts.push_back({size_t(idx), RcptState{RcptStatus(st), v.substr(b + 1)}});
        } else if (k == "event")
            u.event = v;
        return true;
    });
    if (ok && u.id.empty()) {
        err = "state record without id";
        return false;
    }
    return ok;
}

void StateUpdate::apply(MessageState& st) const {
    if (attempts >= 0) st.attempts = attempts;
    if (next_due_ms >= 0) st.next_due_ms = next_due_ms;
    for (const auto& [i, r] : rcpts) {
        if (i >= 100000) continue;  // a corrupt index must not allocate without bound
        if (i >= st.rcpts.size()) st.rcpts.resize(i + 1);  // sized by the envelope later
        st.rcpts[i] = r;
    }
    if (!event.empty()) st.history.push_back(fmt::format("{} {}", at_ms, event));
}

}  // namespace kasi
