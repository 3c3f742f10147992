// Incremental parser for the replies an SMTP server sends to the client. Bytes go in as
// they arrive; complete replies come out. A peer that sends garbage cannot make it grow
// without bound: a line longer than max_line, a reply of more than max_lines lines, a code
// that is not three digits 2xx-5xx, or continuation lines whose code changes mid-reply
// are errors, after which the connection must be dropped (the caller defers the mail).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct SmtpReply {
    int code = 0;
    std::string enhanced;            // "5.1.1" when the first line carries one, else ""
    std::vector<std::string> lines;  // text after "NNN-" / "NNN " on each line
    std::string text() const;        // lines joined with a space (for logs and events)
    int cls() const { return code / 100; }
};

class ReplyParser {
  public:
    explicit ReplyParser(size_t max_line = 4096, size_t max_lines = 256)
        : max_line_(max_line), max_lines_(max_lines) {}

    // Appends bytes; false once the input is invalid (error() says why).
    bool feed(std::string_view data);
    bool has_reply() const { return head_ < ready_.size(); }
    SmtpReply take();  // the oldest complete reply
    size_t ready_count() const { return ready_.size() - head_; }
    const std::string& error() const { return error_; }
    bool mid_reply() const { return !cur_.lines.empty() || !partial_.empty(); }

  private:
    bool line(std::string_view l);
    bool fail(std::string why);

    size_t max_line_, max_lines_;
    std::string partial_;
    SmtpReply cur_;
    std::vector<SmtpReply> ready_;
    size_t head_ = 0;
    std::string error_;
};

// "x.y.z" at the start of `text` (RFC 3463 syntax), or "".
std::string_view leading_enhanced_code(std::string_view text);

}  // namespace kasi
