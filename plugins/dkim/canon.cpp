#include "plugins/dkim/canon.h"

namespace kasi::dkim {

namespace {

bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}

// Collects small runs (a relaxed line is rebuilt byte by byte) and hands them on in blocks.
class Buffered {
  public:
    explicit Buffered(BodySink& s) : sink_(s) { buf_.reserve(kBlock + 1024); }
    ~Buffered() { flush(); }
    void put(std::string_view b) {
        if (b.size() >= kBlock) {
            flush();
            sink_.put(b);
            return;
        }
        buf_.append(b);
        if (buf_.size() >= kBlock) flush();
    }
    void put(char c) {
        buf_.push_back(c);
        if (buf_.size() >= kBlock) flush();
    }
    void flush() {
        if (!buf_.empty()) sink_.put(buf_);
        buf_.clear();
    }

  private:
    static constexpr size_t kBlock = 16384;
    BodySink& sink_;
    std::string buf_;
};

void body_simple(std::string_view b, BodySink& sink) {
    // Trailing empty lines are dropped; a body that does not end in CRLF gets one; an empty
    // body is a single CRLF.
    size_t end = b.size();
    while (end >= 2 && b[end - 2] == '\r' && b[end - 1] == '\n') end -= 2;
    if (end > 0) sink.put(b.substr(0, end));
    sink.put("\r\n");
}

void body_relaxed(std::string_view b, BodySink& sink) {
    Buffered out(sink);
    size_t empty_lines = 0;  // held back: they count only if a non-empty line follows
    size_t pos = 0;
    while (pos < b.size()) {
        size_t eol = b.find("\r\n", pos);
        bool has_crlf = eol != std::string_view::npos;
        size_t line_end = has_crlf ? eol : b.size();
        // The line without trailing whitespace; inner runs of WSP become one space.
        size_t e = line_end;
        while (e > pos && is_wsp(b[e - 1])) --e;
        if (e == pos) {
            ++empty_lines;
        } else {
            for (; empty_lines > 0; --empty_lines) out.put("\r\n");
            size_t run = pos;  // start of the current WSP-free run
            for (size_t i = pos; i < e; ++i) {
                if (!is_wsp(b[i])) continue;
                out.put(b.substr(run, i - run));
                out.put(' ');
                while (i + 1 < e && is_wsp(b[i + 1])) ++i;
                run = i + 1;
            }
            out.put(b.substr(run, e - run));
            out.put("\r\n");
        }
        pos = has_crlf ? eol + 2 : b.size();
    }
}

}  // namespace

std::string_view canon_name(Canon c) {
    return c == Canon::simple ? "simple" : "relaxed";
}

bool parse_canon(std::string_view s, Canon& header, Canon& body) {
    auto one = [](std::string_view v, Canon& c) {
        if (v == "simple")
            c = Canon::simple;
        else if (v == "relaxed")
            c = Canon::relaxed;
        else
            return false;
        return true;
    };
    size_t slash = s.find('/');
    if (slash == std::string_view::npos) {
        body = Canon::simple;  // RFC 6376 §3.5: "c=relaxed" means relaxed/simple
        return one(s, header);
    }
    return one(s.substr(0, slash), header) && one(s.substr(slash + 1), body);
}

void canon_header(Canon c, std::string_view field, std::string& out) {
    if (c == Canon::simple) {
        out.append(field);
        return;
    }
    size_t colon = field.find(':');
    if (colon == std::string_view::npos) colon = field.size();
    std::string_view name = field.substr(0, colon);
    while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
    for (char ch : name) out.push_back(ch >= 'A' && ch <= 'Z' ? char(ch - 'A' + 'a') : ch);
    out.push_back(':');
    // Unfold (drop CRLF), turn runs of WSP into one space, drop WSP at both ends.
    std::string_view v = colon < field.size() ? field.substr(colon + 1) : std::string_view{};
    bool pending_space = false, started = false;
    for (char ch : v) {
        if (ch == '\r' || ch == '\n') continue;
        if (is_wsp(ch)) {
            pending_space = started;
            continue;
        }
        if (pending_space) out.push_back(' ');
        pending_space = false;
        started = true;
        out.push_back(ch);
    }
    out.append("\r\n");
}

void canon_body(Canon c, std::string_view body, BodySink& sink) {
    if (c == Canon::simple)
        body_simple(body, sink);
    else
        body_relaxed(body, sink);
}

}  // namespace kasi::dkim
