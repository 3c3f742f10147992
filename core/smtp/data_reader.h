// Reads the DATA phase (RFC 5321 §4.1.1.4) from the session's input buffer, streaming:
//   - a line "." ends the message; a leading dot of any other line is removed;
//   - a line ending in a bare LF (including ".\n") is refused, as Haraka 3.3.4 does, to
//     stop "\n.\n" SMTP smuggling; the session answers 451 and disconnects;
//   - lines longer than data_line_length are wrapped with CRLF SP (Sendmail's and Haraka's
//     behaviour), and the message is marked;
//   - bytes past max_bytes are read and dropped, and the message is marked too big.
// The stored message keeps CRLF line endings and is not dot-stuffed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kasi {

class DataReader {
  public:
    enum class Status { more, done, bare_lf };

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
    size_t line_len_ = 0;    // length of the current (wrapped) output line
    bool too_big_ = false;
    bool wrapped_ = false;
    uint64_t seen_ = 0;
};

}  // namespace kasi
