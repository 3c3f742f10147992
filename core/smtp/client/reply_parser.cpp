#include "core/smtp/client/reply_parser.h"

#include <fmt/format.h>

namespace kasi {

namespace {

bool digits(std::string_view s, size_t min, size_t max) {
    if (s.size() < min || s.size() > max) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

std::string_view leading_enhanced_code(std::string_view t) {
    size_t end = t.find_first_of(" \t");
    std::string_view code = t.substr(0, end);
    size_t d1 = code.find('.');
    if (d1 == std::string_view::npos) return {};
    size_t d2 = code.find('.', d1 + 1);
    if (d2 == std::string_view::npos) return {};
    std::string_view a = code.substr(0, d1), b = code.substr(d1 + 1, d2 - d1 - 1),
                     c = code.substr(d2 + 1);
    if (a.size() != 1 || (a[0] != '2' && a[0] != '4' && a[0] != '5')) return {};
    if (!digits(b, 1, 3) || !digits(c, 1, 3)) return {};
    return code;
}

std::string SmtpReply::text() const {
    std::string out;
    for (const auto& l : lines) {
        if (!out.empty()) out += ' ';
        out += l;
    }
    return out;
}

bool ReplyParser::fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
}

bool ReplyParser::feed(std::string_view data) {
    if (!error_.empty()) return false;
    while (!data.empty()) {
        size_t nl = data.find('\n');
        if (nl == std::string_view::npos) {
            if (partial_.size() + data.size() > max_line_)
                return fail(fmt::format("reply line longer than {} bytes", max_line_));
            partial_.append(data);
            return true;
        }
        std::string_view piece = data.substr(0, nl);
        data.remove_prefix(nl + 1);
        if (partial_.size() + piece.size() > max_line_)
            return fail(fmt::format("reply line longer than {} bytes", max_line_));
        bool ok;
        if (partial_.empty()) {
            ok = line(piece);
        } else {
            partial_.append(piece);
            std::string whole = std::move(partial_);
            partial_.clear();
            ok = line(whole);
        }
        if (!ok) return false;
    }
    return true;
}

bool ReplyParser::line(std::string_view l) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.size() < 3 || !digits(l.substr(0, 3), 3, 3) || l[0] < '2' || l[0] > '5')
        return fail(fmt::format("invalid reply line '{}'", l.substr(0, 80)));
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    bool more = false;
    if (l.size() > 3) {
        if (l[3] == '-')
            more = true;
        else if (l[3] != ' ')
            return fail(fmt::format("invalid reply line '{}'", l.substr(0, 80)));
    }
    if (!cur_.lines.empty() && cur_.code != code)
        return fail(
            fmt::format("reply code changed from {} to {} within a reply", cur_.code, code));
    if (cur_.lines.size() >= max_lines_)
        return fail(fmt::format("reply longer than {} lines", max_lines_));
    std::string_view text = l.size() > 4 ? l.substr(4) : std::string_view{};
    if (cur_.lines.empty()) {
        cur_.code = code;
        std::string_view ec = leading_enhanced_code(text);
        if (!ec.empty() && ec[0] == l[0]) {
            cur_.enhanced = std::string(ec);
            text.remove_prefix(ec.size());
            while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
                text.remove_prefix(1);
        }
    } else if (!cur_.enhanced.empty()) {
        // Continuation lines usually repeat the enhanced code; keep only the text.
        std::string_view ec = leading_enhanced_code(text);
        if (ec == cur_.enhanced) {
            text.remove_prefix(ec.size());
            while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        }
    }
    cur_.lines.emplace_back(text);
    if (!more) {
        ready_.push_back(std::move(cur_));
        cur_ = SmtpReply{};
    }
    return true;
}

SmtpReply ReplyParser::take() {
    SmtpReply r = std::move(ready_[head_]);
    if (++head_ == ready_.size()) {
        ready_.clear();
        head_ = 0;
    }
    return r;
}

}  // namespace kasi
