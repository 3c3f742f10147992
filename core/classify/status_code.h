// Enhanced status codes (RFC 3463: class.subject.detail) and the patterns rule files use
// to match them and SMTP reply codes.
//
//   status pattern   each of the three parts is a number, `*`, or a range `a-b`:
//                    5.1.1   5.7.*   *.2.2   5.7.501-503   4.*.*
//   code pattern     three characters, each a digit or `x`, or a range:  550  55x  5xx  501-507
//
// A pattern never matches an absent code (0 / no status).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kasi {

struct StatusCode {
    uint16_t cls = 0, subject = 0, detail = 0;  // cls 0 = none
    bool valid() const { return cls != 0; }
    std::string str() const;
};

// "5.1.1" (class 2, 4 or 5; subject and detail 1-3 digits); false for anything else.
bool parse_status(std::string_view s, StatusCode& out);
// The first enhanced status code written in `text` (not part of a longer number, an IP
// address or a version such as "v2.1.0"), or none.
StatusCode find_status(std::string_view text);

struct StatusPattern {
    uint16_t lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    bool matches(const StatusCode& s) const;
};
bool parse_status_pattern(std::string_view s, StatusPattern& out);

struct CodePattern {
    uint16_t lo = 0, hi = 0;     // a range: lo <= code <= hi
    char digits[3] = {0, 0, 0};  // else: each a digit or 'x'
    bool range = false;
    bool matches(int code) const;
};
bool parse_code_pattern(std::string_view s, CodePattern& out);

}  // namespace kasi
