// The DATA phase as the session reads it (core/smtp/data_reader.h): the message stream is
// fed to one DataReader whole and to another in pseudo-random chunk splits (the way bytes
// arrive from the network: appended to the session's buffer, the consumed prefix dropped
// now and then). Both must end in the same state: same status, same message bytes, same
// flags, same number of bytes consumed. Then the accepted message goes through what
// data_post does with it: scan_headers and count_mime_parts.
//
// Input layout (FuzzedDataProvider): max line length, max message size, an optional long
// run of 'x' (to reach the 64 KiB no-newline path), a seed for the chunk sizes; the rest
// is the stream ("...\r\n.\r\n").
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "core/smtp/data_reader.h"
#include "core/smtp/headers.h"
#include "core/smtp/mime_scan.h"
#include "fuzz/fuzz_check.h"

namespace {

using kasi::DataReader;

struct Outcome {
    DataReader::Status status = DataReader::Status::more;
    std::string body;
    size_t consumed = 0;
    bool too_big = false, wrapped = false;
    uint64_t seen = 0;
};

Outcome whole(const std::string& in, uint64_t max_bytes, size_t max_line) {
    DataReader r;
    r.reset(max_bytes, max_line);
    Outcome o;
    o.status = r.feed(in, o.consumed, o.body);
    o.too_big = r.too_big();
    o.wrapped = r.wrapped();
    o.seen = r.bytes_seen();
    return o;
}

Outcome chunked(const std::string& in, uint64_t max_bytes, size_t max_line, uint32_t seed) {
    DataReader r;
    r.reset(max_bytes, max_line);
    std::minstd_rand rng(seed | 1);
    Outcome o;
    std::string buf;  // the session's input buffer
    size_t pos = 0, dropped = 0, fed = 0;
    while (fed < in.size()) {
        size_t n = std::min<size_t>(in.size() - fed, 1 + rng() % (rng() % 4 == 0 ? 70000 : 64));
        buf.append(in, fed, n);
        fed += n;
        o.status = r.feed(buf, pos, o.body);
        if (o.status != DataReader::Status::more) break;
        if (rng() % 3 == 0) {  // the session compacts its buffer
            buf.erase(0, pos);
            dropped += pos;
            pos = 0;
        }
    }
    o.consumed = dropped + pos;
    o.too_big = r.too_big();
    o.wrapped = r.wrapped();
    o.seen = r.bytes_seen();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider fdp(data, size);
    // connection.ini max.data_line_length is at least 78 (DataReader never advances with 1).
    size_t max_line = fdp.ConsumeIntegralInRange<size_t>(78, 2000);
    uint64_t max_bytes = fdp.ConsumeIntegralInRange<uint64_t>(0, 1 << 20);
    size_t run = fdp.ConsumeIntegralInRange<size_t>(0, 15) == 0
                     ? fdp.ConsumeIntegralInRange<size_t>(0, 140000)
                     : 0;
    uint32_t seed = fdp.ConsumeIntegral<uint32_t>();
    std::string in = fdp.ConsumeRemainingBytesAsString();
    if (run) in.insert(in.size() / 2, run, 'x');

    Outcome a = whole(in, max_bytes, max_line);
    Outcome b = chunked(in, max_bytes, max_line, seed);
    FUZZ_CHECK(a.status == b.status);
    // An unfinished stream may differ in how much of an over-long last line was taken, and
    // so may one refused for a bare LF (the session drops that message).
    if (a.status == DataReader::Status::done) {
        FUZZ_CHECK(a.body == b.body);
        FUZZ_CHECK(a.too_big == b.too_big);
        FUZZ_CHECK(a.wrapped == b.wrapped);
        FUZZ_CHECK(a.seen == b.seen);
        FUZZ_CHECK(a.consumed == b.consumed);
    }
    FUZZ_CHECK(a.consumed <= in.size());
    FUZZ_CHECK(!a.too_big || a.body.empty());
    // The limit is checked before each line's CRLF is added.
    FUZZ_CHECK(a.too_big || a.body.size() <= max_bytes + 2);
    // Every stored line ends in CRLF: no bare LF reaches the spool.
    for (size_t i = 0; i < a.body.size(); ++i)
        if (a.body[i] == '\n') FUZZ_CHECK(i > 0 && a.body[i - 1] == '\r');
    if (a.status == DataReader::Status::done) {
        auto hf = kasi::scan_headers(a.body, 1000);
        FUZZ_CHECK(hf.header_bytes <= a.body.size());
        (void)kasi::count_mime_parts(a.body, 1000);
    }
    return 0;
}
