// What every fuzz target shares: FUZZ_CHECK(cond) states a property the parser promises
// (in its header comment) and aborts with the failed condition when it does not hold, so
// libFuzzer records the input as a crash just as it does for an ASan or UBSan report.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
            std::abort();                                                                        \
        }                                                                                        \
    } while (0)

namespace kasi::fuzz {

// FUZZ_STRICT=1 in the environment also checks the properties of open findings
// (fuzz/findings/README.md); without it the targets step around them so that CI stays
// green until they are fixed.
inline bool strict() {
    static const bool on = [] {
        const char* v = std::getenv("FUZZ_STRICT");
        return v && *v == '1';
    }();
    return on;
}

// No CR, LF or NUL: what may go into a header line, a spool record or a log line.
inline bool one_line(std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

}  // namespace kasi::fuzz
