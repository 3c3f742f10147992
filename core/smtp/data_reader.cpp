#include "core/smtp/data_reader.h"

#include <cstring>

namespace kasi {

namespace {
constexpr size_t partial_chunk = 64 * 1024;  // consume a newline-less run at this size
}

void DataReader::reset(uint64_t max_bytes, size_t max_line) {
    *this = DataReader{};
    max_bytes_ = max_bytes;
    max_line_ = max_line;
}

void DataReader::append(std::string& body, std::string_view s) {
    seen_ += s.size();
    if (too_big_) return;
    // Wrap over-long lines: CRLF SP every max_line_ octets of a line.
    while (line_len_ + s.size() > max_line_) {
        size_t take = max_line_ > line_len_ ? max_line_ - line_len_ : 0;
        body.append(s.data(), take);
        body.append("\r\n ");
        s.remove_prefix(take);
        line_len_ = 1;
        wrapped_ = true;
    }
    body.append(s.data(), s.size());
    line_len_ += s.size();
    if (body.size() > max_bytes_) {
        too_big_ = true;
        body.clear();
        body.shrink_to_fit();
    }
}

DataReader::Status DataReader::feed(std::string_view in, size_t& pos, std::string& body) {
    while (pos < in.size()) {
        const char* start = in.data() + pos;
        size_t avail = in.size() - pos;
        auto* nl = static_cast<const char*>(std::memchr(start, '\n', avail));
        if (!nl) {
            if (avail < partial_chunk) return Status::more;
            // An over-long line with no end in sight: take what we have (keep one byte
            // back in case it is the CR of a CRLF split across reads).
            size_t take = avail - 1;
            // A CR here has no LF after it. It is answered when the line ends, as the whole
            // line would be: the answer must not depend on how the bytes arrived.
            if (std::memchr(start, '\r', take)) bare_cr_ = true;
            if (!mid_line_ && start[0] == '.') {
                ++start;
                --take;
                ++pos;
            }
            append(body, std::string_view(start, take));
            pos += take;
            mid_line_ = true;
            return Status::more;
        }
        size_t len = size_t(nl - start);  // without the LF
        // A bare CR first (also one an earlier partial chunk of this line held), then a bare
        // LF: the answer must not depend on how the line arrived.
        if (bare_cr_ || (len > 1 && std::memchr(start, '\r', len - 1))) return Status::bare_cr;
        if (len == 0 || start[len - 1] != '\r') return Status::bare_lf;
        std::string_view line(start, len - 1);  // without CRLF
        pos += len + 1;
        if (!mid_line_) {
            if (line == ".") return Status::done;
            if (!line.empty() && line[0] == '.') line.remove_prefix(1);
        }
        mid_line_ = false;
        append(body, line);
        if (!too_big_) body.append("\r\n");
        seen_ += 2;
        line_len_ = 0;
    }
    return Status::more;
}

void LineEndCheck::feed(std::string_view piece) {
    if (failed() || piece.empty()) return;
    const char* p = piece.data();
    const char* end = p + piece.size();
    if (prev_cr_) {
        if (*p != '\n') {
            result_ = Result::bare_cr;
            return;
        }
        ++p;  // the LF that pairs the previous piece's CR
    }
    while (p < end) {
        auto* lf = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        const char* stop = lf ? lf : end;
        // The only CR allowed before `stop` is the one right before the LF (or, with no LF
        // in this piece, the piece's last byte, which the next piece must pair).
        auto* cr = static_cast<const char*>(std::memchr(p, '\r', size_t(stop - p)));
        if (cr && cr != (lf ? lf : end) - 1) {
            result_ = Result::bare_cr;
            return;
        }
        if (!lf) break;
        if (lf == p || lf[-1] != '\r') {
            result_ = Result::bare_lf;
            return;
        }
        p = lf + 1;
    }
    prev_cr_ = piece.back() == '\r';
}

LineEndCheck::Result LineEndCheck::finish() const {
    if (!failed() && prev_cr_) return Result::bare_cr;
    return result_;
}

}  // namespace kasi
