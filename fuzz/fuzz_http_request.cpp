// The HTTP API's request parser (core/http/http_request.h) as the connection drives it:
// bytes arrive in pseudo-random pieces, each complete request is taken and the parser reset
// for the next (pipelining), until an error or the end of the input. Then what the router
// reads of a request: header(), query_param(), and percent_decode on the raw input.
// Properties: `used` never exceeds what was given; an error has a 4xx/5xx status and a
// reason; a request's body respects the configured limit; header names are lower case.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "core/http/http_request.h"
#include "fuzz/fuzz_check.h"

namespace {

constexpr size_t max_header = 4096, max_body = 8192, max_batch = 16384;

void check_request(const kasi::HttpRequest& r) {
    FUZZ_CHECK(r.body.size() <= max_batch);
    for (const auto& [name, value] : r.headers)
        for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    (void)r.header("content-type");
    (void)r.header("authorization");
    (void)r.query_param("domain");
    (void)r.query_param("id");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider fdp(data, size);
    uint32_t seed = fdp.ConsumeIntegral<uint32_t>();
    std::string in = fdp.ConsumeRemainingBytesAsString();
    std::minstd_rand rng(seed | 1);

    kasi::RequestParser p;
    p.set_limits(max_header, max_body, max_batch);
    std::string buf;
    size_t fed = 0;
    int requests = 0;
    while (fed < in.size() || !buf.empty()) {
        if (fed < in.size()) {
            size_t n = std::min<size_t>(in.size() - fed, 1 + rng() % 200);
            buf.append(in, fed, n);
            fed += n;
        }
        size_t used = 0;
        auto st = p.feed(buf.data(), buf.size(), used);
        FUZZ_CHECK(used <= buf.size());
        buf.erase(0, used);
        if (st == kasi::RequestParser::State::error) {
            FUZZ_CHECK(p.error_status() >= 400 && p.error_status() < 600);
            FUZZ_CHECK(!p.error_text().empty());
            break;
        }
        if (st == kasi::RequestParser::State::done) {
            check_request(p.take());
            p.reset();
            if (++requests > 50) break;
            continue;
        }
        (void)p.take_continue();
        if (fed >= in.size()) break;  // more is needed and there is no more
    }
    std::string out;
    (void)kasi::percent_decode(in, out, true);
    FUZZ_CHECK(out.size() <= in.size());
    return 0;
}
