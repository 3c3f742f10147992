// Reads the DATA phase (RFC 5321 §4.1.1.4) from the session's input buffer, streaming:
//   - a line "." ends the message; a leading dot of any other line is removed;
//   - a line ending in a bare LF (including ".\n") is refused, as Haraka 3.3.4 does, to
//     stop "\n.\n" SMTP smuggling; the session answers 451 and disconnects;
//   - a bare CR (one not directly followed by LF: "\r.\r", "a\rb", CR CR LF) is refused the
//     same way, so nothing that a next hop could read as "<CR>.<CR>" is ever stored;
//   - lines longer than data_line_length are wrapped with CRLF SP (Sendmail's and Haraka's
//     behaviour), and the message is marked;
//   - bytes past max_bytes are read and dropped, and the message is marked too big.
// The stored message keeps CRLF line endings and is not dot-stuffed.
//
// Both checks cost one memchr per line (LF to find the line end, CR within the line), no
// per-byte branch. LineEndCheck applies the same rule to BDAT chunks, which arrive as
// counted bytes in any number of reads: it remembers a CR at the end of one piece and asks
// the next piece to begin with LF.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kasi {

class DataReader {
  public:
    enum class Status { more, done, bare_lf, bare_cr };

    void reset(uint64_t max_bytes, size_t max_line);
    // Consumes input from in[pos..]; advances pos. Appends message bytes to body.
    Status feed(std::string_view in, size_t& pos, std::string& body);

    bool too_big() const { return too_big_; }
    bool wrapped() const { return wrapped_; }
    uint64_t bytes_seen() const { return seen_; }

  private:
    void append(std::string& body, std::string_view s);

    uint64_t max_bytes_ = 0;
    size_t max_line_ = 992;
    bool mid_line_ = false;  // a partial line (longer than the chunk limit) is in progress
    bool bare_cr_ = false;   // that partial line held a bare CR: refused when its LF comes
    size_t line_len_ = 0;    // length of the current (wrapped) output line
    bool too_big_ = false;
    bool wrapped_ = false;
    uint64_t seen_ = 0;
};

// The BDAT form of the line-end rule: feed every byte of the message, in order, in pieces
// of any size; finish() says whether a bare LF or a bare CR came (the first one decides).
// A message may end without CRLF (RFC 3030), but not on a CR.
class LineEndCheck {
  public:
    enum class Result { ok, bare_lf, bare_cr };

    void feed(std::string_view piece);
    Result finish() const;
    bool failed() const { return result_ != Result::ok; }

  private:
    Result result_ = Result::ok;
    bool prev_cr_ = false;  // the last byte fed was a CR (its LF may come in the next piece)
};

}  // namespace kasi
