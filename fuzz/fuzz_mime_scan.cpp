// MIME part counting (core/smtp/mime_scan.h, connection.ini max.mime_parts) and the header
// scan the server runs on every accepted message (core/smtp/headers.h scan_headers).
// Input: a message as stored (CRLF lines). Properties: the count stops once it exceeds
// the limit (it is at most limit + 1), and the header block lies within the message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/smtp/headers.h"
#include "core/smtp/mime_scan.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view m(reinterpret_cast<const char*>(data), size);
    size_t limit = size ? size_t(data[0] % 64) : 0;
    FUZZ_CHECK(kasi::count_mime_parts(m, limit) <= limit + 1);
    (void)kasi::count_mime_parts(m, 1000);
    auto hf = kasi::scan_headers(m, 1000);
    FUZZ_CHECK(hf.header_bytes <= m.size());
    FUZZ_CHECK(hf.lines <= 1000 || hf.line_limit_hit);
    return 0;
}
