#include "core/feedback/bounce_text.h"

#include <algorithm>
#include <cctype>

#include "core/util/strings.h"

namespace kasi {

namespace {

bool local_char(unsigned char c) {
    return std::isalnum(c) ||
           std::string_view(".!#$%&'*+/=?^_`{|}~-").find(char(c)) != std::string_view::npos;
}

bool domain_char(unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_';
}

struct Found {
    size_t begin, end;  // in the text
    std::string address;
};

// The address around the '@' at `at`, if it is one (a dot in the domain, or [literal]).
bool address_at(std::string_view t, size_t at, Found& out) {
    size_t b = at;
    while (b > 0 && local_char(static_cast<unsigned char>(t[b - 1]))) --b;
    while (b < at && t[b] == '.') ++b;
    size_t e = at + 1;
    while (e < t.size() && domain_char(static_cast<unsigned char>(t[e]))) ++e;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;
    if (b == at || e == at + 1) return false;
    auto domain = t.substr(at + 1, e - at - 1);
    if (domain.find('.') == std::string_view::npos || domain.front() == '.') return false;
    out = {b, e, to_lower(t.substr(b, e - b))};
    return true;
}

std::vector<Found> find_addresses(std::string_view t, size_t max) {
    std::vector<Found> out;
    size_t pos = 0;
    while (out.size() < max && (pos = t.find('@', pos)) != std::string_view::npos) {
        Found f;
        if (address_at(t, pos, f)) {
            out.push_back(f);
            pos = f.end;
        } else {
            ++pos;
        }
    }
    return out;
}

std::string lower(std::string_view s) {
    return to_lower(s);
}

// A line that starts the returned message.
bool separator_line(std::string_view line) {
    auto l = lower(trim(line));
    if (l.empty()) return false;
    static const std::string_view phrases[] = {
        "below this line is a copy of the message",
        "this is a copy of the message",
        "copy of the original message",
        "original message follows",
        "original message header",
        "headers of the original message",
        "header of the original message",
        "original message ---",
        "original message --",
        "message headers follow",
        "unsent message below",
        "returned message follows",
        "returned message ---",
        "content-type: message/rfc822",
        "content-type: text/rfc822-headers",
        "original message:",
        "the original message headers are",
        "undelivered message headers",
        "original mail:",
        "message text follows",
    };
    for (auto p : phrases)
        if (l.find(p) != std::string::npos) return true;
    return false;
}

bool header_start(std::string_view line) {
    return istarts_with(line, "Return-Path:") || istarts_with(line, "Received: from") ||
           istarts_with(line, "Received: by") || istarts_with(line, "DKIM-Signature:");
}

struct Line {
    size_t begin, end;  // without the line end
};

std::vector<Line> lines_of(std::string_view t) {
    std::vector<Line> out;
    size_t pos = 0;
    while (pos < t.size()) {
        size_t nl = t.find('\n', pos);
        size_t end = nl == std::string_view::npos ? t.size() : nl;
        size_t e = end;
        if (e > pos && t[e - 1] == '\r') --e;
        out.push_back({pos, e});
        pos = nl == std::string_view::npos ? t.size() : nl + 1;
    }
    return out;
}

bool blank(std::string_view s) {
    return trim(s).empty();
}

// "----- Transcript of session follows -----", "=====", "*** ... ***": a section starts.
bool separator(std::string_view s) {
    s = trim(s);
    if (s.size() < 3) return false;
    auto lead = s.substr(0, 3);
    return lead == "---" || lead == "===" || lead == "***" || lead == "___";
}

// What is left of a line once the address and its decoration are removed.
std::string_view rest_after(std::string_view line, size_t addr_end) {
    auto r = line.substr(std::min(addr_end, line.size()));
    size_t i = 0;
    while (i < r.size() &&
           (r[i] == '>' || r[i] == '"' || r[i] == '\'' || r[i] == ')' || r[i] == ']'))
        ++i;
    r.remove_prefix(i);
    r = trim(r);
    if (r.substr(0, 3) == "...") r.remove_prefix(3);
    if (!r.empty() && (r.front() == ':' || r.front() == ',' || r.front() == ';'))
        r.remove_prefix(1);
    return trim(r);
}

bool decoration_only(std::string_view s);

// The address is all there is on its line, but for brackets and a colon: "<a@b>:".
bool stands_alone(std::string_view line, const Found& f) {
    return decoration_only(line.substr(0, f.begin)) && decoration_only(line.substr(f.end));
}

bool decoration_only(std::string_view s) {
    for (unsigned char c : s)
        if (std::isalnum(c)) return false;
    return true;
}

// Before the address on its line: nothing but decoration or a label such as "To:",
// "Recipient:", "rfc822;", "Original-Recipient:" (at most two words).
bool lead_is_label(std::string_view lead) {
    lead = trim(lead);
    if (lead.empty() || decoration_only(lead)) return true;
    size_t words = 1;
    for (char c : lead)
        if (c == ' ') ++words;
    if (words > 3) return false;
    auto l = lower(lead);
    static const std::string_view labels[] = {"to:",    "recipient", "address", "rfc822;",
                                              "failed", "user",      "mailbox", "<"};
    for (auto w : labels)
        if (l.find(w) != std::string::npos) return true;
    return false;
}

}  // namespace

std::string one_line(std::string_view s, size_t max) {
    std::string out;
    out.reserve(std::min(s.size(), max));
    bool space = false;
    for (char c : s) {
        if (out.size() >= max) break;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

BounceText split_returned(std::string_view text) {
    auto ls = lines_of(text);
    for (size_t i = 0; i < ls.size(); ++i) {
        auto line = text.substr(ls[i].begin, ls[i].end - ls[i].begin);
        bool sep = separator_line(line);
        bool hdr = !sep && header_start(line) &&
                   (i == 0 || blank(text.substr(ls[i - 1].begin, ls[i - 1].end - ls[i - 1].begin)));
        if (!sep && !hdr) continue;
        BounceText bt;
        bt.report = std::string(text.substr(0, ls[i].begin));
        size_t from = sep ? (i + 1 < ls.size() ? ls[i + 1].begin : text.size()) : ls[i].begin;
        auto rest = text.substr(from);
        while (!rest.empty() && (rest.front() == '\n' || rest.front() == '\r'))
            rest.remove_prefix(1);
        bt.returned = std::string(rest);
        return bt;
    }
    return {std::string(text), {}};
}

std::vector<std::string> addresses_in(std::string_view text, size_t max) {
    std::vector<std::string> out;
    for (auto& f : find_addresses(text, max * 4)) {
        if (std::find(out.begin(), out.end(), f.address) == out.end()) out.push_back(f.address);
        if (out.size() >= max) break;
    }
    return out;
}

std::vector<TextRecipient> recipients_in_text(std::string_view report,
                                              const std::vector<std::string>& exclude) {
    auto ls = lines_of(report);
    auto line_of = [&](size_t i) { return report.substr(ls[i].begin, ls[i].end - ls[i].begin); };
    auto excluded = [&](const std::string& a) {
        return std::find(exclude.begin(), exclude.end(), a) != exclude.end();
    };
    struct Candidate {
        size_t line;
        Found f;
        bool strong;
    };
    std::vector<Candidate> cands;
    for (size_t i = 0; i < ls.size() && cands.size() < 400; ++i) {
        auto line = line_of(i);
        for (auto& f : find_addresses(line, 8)) {
            auto lead = to_lower(line.substr(0, f.begin));
            // a transcript's "MAIL FROM:<a@b>" or "envelope-from" names the sender
            if (lead.find("mail from") != std::string::npos ||
                lead.find("envelope-from") != std::string::npos ||
                lead.find("sender") != std::string::npos)
                continue;
            bool strong = lead_is_label(line.substr(0, f.begin));
            // The report's own addresses are not recipients, unless one stands on its line
            // as a recipient does (a message sent to oneself came back); a daemon's address
            // is a recipient only where a line starts with it ("postmaster@b: no such domain").
            bool daemon =
                !(strong && trim(lead).empty()) && (f.address.rfind("mailer-daemon@", 0) == 0 ||
                                                    f.address.rfind("postmaster@", 0) == 0);
            if (daemon || (excluded(f.address) && !(strong && stands_alone(line, f)))) continue;
            cands.push_back({i, f, strong});
        }
    }
    bool any_strong = std::any_of(cands.begin(), cands.end(), [](auto& c) { return c.strong; });
    std::vector<TextRecipient> out;
    std::vector<size_t> rec_lines;
    for (auto& c : cands)
        if (c.strong || !any_strong) rec_lines.push_back(c.line);
    // A strong candidate's words: the rest of its line and the lines under it, up to an
    // empty line, a separator line or the next recipient's line.
    auto words_under = [&](size_t at, size_t addr_end) {
        std::string diag(rest_after(line_of(at), addr_end));
        // A transcript's ">>> RCPT TO:<a@b>" names the command the reply under it answers;
        // a line ending in ':' just above introduces the reply ("... did not like our RCPT
        // TO:", "host mx.example said:").
        std::string intro;
        if (at > 0) {
            auto above = trim(line_of(at - 1));
            if (!above.empty() && above.back() == ':' && above.size() < 200 &&
                std::find(rec_lines.begin(), rec_lines.end(), at - 1) == rec_lines.end())
                intro = std::string(above) + " ";
        }
        auto lead = to_lower(line_of(at).substr(0, std::min(addr_end, line_of(at).size())));
        if (lead.find("rcpt to") != std::string::npos) intro += "RCPT TO: ";
        for (size_t j = at + 1; j < ls.size(); ++j) {
            auto l = line_of(j);
            if (blank(l)) {
                if (diag.empty() && j + 1 < ls.size()) continue;  // "addr" / "" / "reason"
                break;
            }
            if (separator(l)) break;
            if (std::find(rec_lines.begin(), rec_lines.end(), j) != rec_lines.end()) break;
            if (!diag.empty()) diag += ' ';
            diag.append(trim(l));
            if (diag.size() > 4096) break;
        }
        return std::string(trim(intro + diag));
    };
    // A weak candidate's words: the paragraph that mentions it and the one after it
    // ("There was an error delivering your mail to <a@b>." / "Could not deliver for ...").
    auto paragraph_of = [&](size_t at) {
        size_t a = at, b = at;
        while (a > 0 && !blank(line_of(a - 1))) --a;
        while (b + 1 < ls.size() && !blank(line_of(b + 1))) ++b;
        size_t c = b + 1;
        while (c < ls.size() && blank(line_of(c))) ++c;
        if (c < ls.size() && !separator(line_of(c)) &&
            std::find(rec_lines.begin(), rec_lines.end(), c) == rec_lines.end()) {
            b = c;
            while (b + 1 < ls.size() && !blank(line_of(b + 1))) ++b;
        }
        return std::string(report.substr(ls[a].begin, ls[b].end - ls[a].begin));
    };
    for (size_t k = 0; k < cands.size(); ++k) {
        auto& c = cands[k];
        if (any_strong && !c.strong) continue;
        std::string diag = c.strong ? words_under(c.line, c.f.end) : paragraph_of(c.line);
        // The same address named again (a list, then a transcript): its words add up.
        auto it =
            std::find_if(out.begin(), out.end(), [&](auto& r) { return r.address == c.f.address; });
        if (it != out.end()) {
            auto d = one_line(diag);
            if (!d.empty() && it->diagnostic.find(d) == std::string::npos)
                it->diagnostic = one_line(it->diagnostic + " " + d);
            continue;
        }
        if (out.size() >= 100) break;
        out.push_back({c.f.address, one_line(diag)});
    }
    return out;
}

namespace {

bool digit(char c) {
    return c >= '0' && c <= '9';
}

// x.y.z with x in 2,4,5, y 1-3 digits, z 1-3 digits, not part of a longer number/version.
bool status_at(std::string_view s, size_t i, std::string& out) {
    if (i >= s.size() || (s[i] != '2' && s[i] != '4' && s[i] != '5')) return false;
    // not part of a longer number or a version ("v4.6.1", "8.14.4")
    if (i > 0 && (digit(s[i - 1]) || s[i - 1] == '.' || std::isalpha((unsigned char)s[i - 1])))
        return false;
    size_t j = i + 1;
    if (j >= s.size() || s[j] != '.') return false;
    size_t k = ++j;
    while (k < s.size() && digit(s[k]) && k - j < 3) ++k;
    if (k == j || k >= s.size() || s[k] != '.') return false;
    size_t m = ++k;
    while (m < s.size() && digit(s[m]) && m - k < 3) ++m;
    if (m == k ||
        (m < s.size() && (digit(s[m]) || (s[m] == '.' && m + 1 < s.size() && digit(s[m + 1])))))
        return false;
    out = std::string(s.substr(i, m - i));
    return true;
}

// A reply code: three digits [245]xx standing alone (followed by a blank, '-' or the end),
// not inside a longer number, an address or a date.
bool code_at(std::string_view s, size_t i, int& out) {
    if (i + 3 > s.size()) return false;
    if (s[i] != '2' && s[i] != '4' && s[i] != '5') return false;
    if (!digit(s[i + 1]) || !digit(s[i + 2])) return false;
    if (s[i + 1] > '5') return false;
    if (i > 0) {  // ':' may come right before it ("final DATA:550")
        char p = s[i - 1];
        if (digit(p) || std::isalpha(static_cast<unsigned char>(p)) || p == '.' || p == '-' ||
            p == '/' || p == '#' || p == '=' || p == '+' || p == '@' || p == '_')
            return false;
    }
    if (i + 3 < s.size()) {
        char n = s[i + 3];
        if (n != ' ' && n != '-' && n != '\t' && n != ',' && n != ')' && n != ':') return false;
        std::string st;  // "550-5.2.1" is a reply line; "550-1234" a number
        if (n == '-' && i + 4 < s.size() && digit(s[i + 4]) && !status_at(s, i + 4, st))
            return false;
    }
    out = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    return true;
}

// Gmail's older reports end the remote reply with the stage it failed at, "(state 14)".
std::string_view gmail_state(std::string_view lower) {
    auto at = lower.rfind("(state ");
    if (at == std::string_view::npos) return {};
    size_t i = at + 7, n = 0;
    while (i < lower.size() && digit(lower[i]) && n < 100) n = n * 10 + size_t(lower[i++] - '0');
    if (i >= lower.size() || lower[i] != ')') return {};
    switch (n) {
        case 6:
            return "MAIL";
        case 8:
        case 9:
        case 12:
            return "AUTH";
        case 13:
            return "EHLO";
        case 14:
            return "RCPT";
        case 15:
        case 17:
        case 18:
            return "DATA";
        default:
            return {};
    }
}

std::string command_in(std::string_view diag) {
    auto l = to_lower(diag);
    struct P {
        std::string_view phrase, cmd;
    };
    static const P table[] = {
        {"end of data", "DATA"},
        {"final data", "DATA"},
        {"data command", "DATA"},
        {"after data", "DATA"},
        {"in reply to data", "DATA"},
        {"to data", "DATA"},
        {"rcpt to", "RCPT"},
        {"rcpt command", "RCPT"},
        {"mail from", "MAIL"},
        {"mail command", "MAIL"},
        {"after ehlo", "EHLO"},
        {"to ehlo", "EHLO"},
        {"after helo", "HELO"},
        {"to helo", "HELO"},
        {"initial connection", "CONNECT"},
        {"greeting", "CONNECT"},
        // qmail-remote's words for each stage
        {"does not like recipient", "RCPT"},
        {"but sender was rejected", "MAIL"},
        {"but my name was rejected", "EHLO"},
        {"failed after i sent the message", "DATA"},
        // Postfix's "host x refused to talk to me:", 1&1's "for TEXT command"
        {"refused to talk to me", "HELO"},
        {"for text command", "DATA"},
    };
    size_t best = std::string::npos;
    std::string_view cmd;
    // the command's own name standing as a word ("SMTP:RCPT", "[RCPT_TO]", ">>> DATA")
    for (auto [word, name] : {std::pair<std::string_view, std::string_view>{"RCPT", "RCPT"},
                              {"DATA", "DATA"},
                              {"MAIL FROM", "MAIL"},
                              {"EHLO", "EHLO"}}) {
        auto at = diag.find(word);
        bool left = at != std::string_view::npos &&
                    (at == 0 || !std::isalpha(static_cast<unsigned char>(diag[at - 1])));
        size_t e = at + word.size();
        bool right =
            left && (e >= diag.size() || !std::isalpha(static_cast<unsigned char>(diag[e])));
        if (right && at < best) {
            best = at;
            cmd = name;
        }
    }
    for (auto& p : table) {
        auto at = l.find(p.phrase);
        if (at != std::string::npos && at < best) {
            best = at;
            cmd = p.cmd;
        }
    }
    if (cmd.empty()) cmd = gmail_state(l);
    return std::string(cmd);
}

std::string host_in(std::string_view diag) {
    auto l = to_lower(diag);
    for (std::string_view key : {"remote host ", "host ", "while talking to ", "from "}) {
        size_t at = 0;
        while ((at = l.find(key, at)) != std::string::npos) {
            if (at > 0 && std::isalpha(static_cast<unsigned char>(l[at - 1]))) {
                at += key.size();
                continue;
            }
            size_t b = at + key.size();
            size_t e = b;
            while (e < l.size() && (domain_char(static_cast<unsigned char>(l[e])) || l[e] == ':'))
                ++e;
            auto h = std::string_view(diag).substr(b, e - b);
            while (!h.empty() && (h.back() == '.' || h.back() == ':')) h.remove_suffix(1);
            if (h.find('.') != std::string_view::npos) return std::string(h);
            at = b;
        }
    }
    return {};
}

}  // namespace

namespace {

// The start of a reply, blanks folded: what a reply's first line is recognised by.
std::string reply_start(std::string_view s) {
    return one_line(s, 40);
}

}  // namespace

std::string transcript_of(std::string_view report) {
    std::string out;
    size_t pos = 0;
    while (pos < report.size() && out.size() < (64u << 10)) {
        size_t nl = report.find('\n', pos);
        auto line =
            trim(report.substr(pos, nl == std::string_view::npos ? report.size() - pos : nl - pos));
        pos = nl == std::string_view::npos ? report.size() : nl + 1;
        auto lead = line.substr(0, 3);
        if (lead != ">>>" && lead != "<<<") continue;
        out.append(line.substr(0, std::min<size_t>(line.size(), 1024)));
        out += '\n';
    }
    return out;
}

TranscriptFacts transcript_facts(std::string_view report, std::string_view address,
                                 std::string_view diagnostic) {
    TranscriptFacts out;
    std::string current, named;
    auto start = reply_start(diagnostic);
    bool in_reply = false;
    size_t pos = 0, lines = 0;
    while (pos < report.size() && ++lines < 2000) {
        size_t nl = report.find('\n', pos);
        auto line =
            trim(report.substr(pos, nl == std::string_view::npos ? report.size() - pos : nl - pos));
        pos = nl == std::string_view::npos ? report.size() : nl + 1;
        bool sent = line.substr(0, 3) == ">>>", got = line.substr(0, 3) == "<<<";
        if (in_reply) {  // the further lines of the reply that was found
            if (!got || out.reply.size() > 4096) break;
            out.reply += ' ';
            out.reply.append(trim(line.substr(3)));
            continue;
        }
        if (line.size() < 5 || (!sent && !got)) continue;
        bool mentions = to_lower(line).find(address) != std::string::npos;
        if (sent) {
            current = command_in(line.substr(3, 16));
            if (mentions && !current.empty()) named = current;
            continue;
        }
        auto said = trim(line.substr(3));
        bool same = start.size() >= 8 && one_line(said, start.size()) == start;
        if (same) {  // the report's diagnostic is this reply's first line: take all of it
            out.reply = std::string(said);
            in_reply = said.size() > 3 && said[3] == '-';
            if (!in_reply) out.reply.clear();
        }
        if ((mentions || same) && !current.empty() && out.command.empty()) out.command = current;
        if (same && !in_reply) break;
    }
    if (out.command.empty()) out.command = named;
    return out;
}

ReplyFacts reply_facts(std::string_view d) {
    ReplyFacts f;
    for (size_t i = 0; i < d.size(); ++i) {
        if (f.code == 0) {
            int code;
            if (code_at(d, i, code)) {
                f.code = code;
                std::string st;
                size_t j = i + 3;
                while (j < d.size() && j < i + 8 &&
                       (d[j] == ' ' || d[j] == '-' || d[j] == ':' || d[j] == '\'' || d[j] == '"'))
                    ++j;
                if (status_at(d, j, st)) f.status = st;
            }
        }
        if (f.status.empty()) {
            std::string st;
            if (status_at(d, i, st)) f.status = st;
        }
        if (f.code && !f.status.empty()) break;
    }
    // a status's class and a code's class must agree, else the code was a number in text
    if (f.code && !f.status.empty() && f.status[0] - '0' != f.code / 100) f.code = 0;
    f.command = command_in(d);
    f.host = host_in(d);
    return f;
}

}  // namespace kasi
