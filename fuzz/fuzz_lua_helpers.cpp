// The C++ helpers behind the Lua API (policy/lua_objects.cpp, policy/lua_api.cpp), with
// the bytes a plugin or a remote client controls:
//   transaction:get_header/get_all_headers  header_values
//   transaction:add_header/add_header_end   header_field_ok + header_add
//   transaction:remove_header               header_remove
//   (DKIM signing domain, List-Unsubscribe) header_addresses, author_domain
//   kasi.verp.decode                        verp_decode (and verp_encode's round trip)
//   kasi.unsubscribe.verify                 verify_unsubscribe_token (and its round trip)
// Properties: a value read back is unfolded (no CRLF); a field that header_field_ok allows
// and header_add adds is then found by header_values and removed by header_remove; VERP
// and unsubscribe tokens decode to what was encoded.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/queue/verp.h"
#include "core/smtp/address.h"
#include "core/smtp/headers.h"
#include "core/smtp/unsubscribe.h"
#include "core/util/strings.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace kasi;

bool unfolded(const std::string& v) {
    return v.find("\r\n") == std::string::npos;
}

void headers(std::string message, const std::string& name, const std::string& value, bool at_end) {
    for (const auto& v : header_values(message, name)) {
        FUZZ_CHECK(unfolded(v));
        for (const auto& a : header_addresses(v)) FUZZ_CHECK(unfolded(a));
    }
    (void)header_addresses(value);
    FUZZ_CHECK(unfolded(author_domain(message, "envelope.example")));
    std::string err;
    if (!header_field_ok(name, value, err)) {
        FUZZ_CHECK(!err.empty());
        return;
    }
    FUZZ_CHECK(fuzz::one_line(name) && fuzz::one_line(value));
    size_t before = header_values(message, name).size();
    header_add(message, name, value, at_end);
    FUZZ_CHECK(header_values(message, name).size() == before + 1);
    FUZZ_CHECK(header_remove(message, name) == before + 1);
    FUZZ_CHECK(header_values(message, name).empty());
}

void verp(FuzzedDataProvider& fdp, const std::string& secret) {
    std::string why;
    std::string addr = fdp.ConsumeRandomLengthString(200);
    auto v = verp_decode(secret, "b", addr, why);
    FUZZ_CHECK(v || !why.empty());
    // Round trip for a recipient the SMTP server would have accepted.
    auto p = parse_path("<" + fdp.ConsumeRandomLengthString(100) + ">", false, true);
    if (!p.address) return;
    std::string rcpt = p.address->str();
    auto raw = fdp.ConsumeBytes<uint8_t>(16);
    raw.resize(16);
    static const char* hex = "0123456789ABCDEF";
    std::string id;
    for (size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) id += '-';
        id += hex[raw[i] >> 4];
        id += hex[raw[i] & 15];
    }
    id += "." + std::to_string(fdp.ConsumeIntegralInRange<int>(1, 9999));
    int index = fdp.ConsumeIntegralInRange<int>(0, 999);
    std::string enc = verp_encode(secret, "b", "bounces.example", id, rcpt, index);
    FUZZ_CHECK(!enc.empty());
    auto back = verp_decode(secret, "b", enc, why);
    FUZZ_CHECK(back);
    FUZZ_CHECK(back->message_id == id);
    FUZZ_CHECK(back->recipient.empty() ? back->rcpt_index == index
                                       : back->recipient == to_lower(rcpt));
}

void unsubscribe(FuzzedDataProvider& fdp, const std::string& secret) {
    (void)verify_unsubscribe_token(secret, fdp.ConsumeRandomLengthString(300));
    UnsubscribeToken t;
    // Fields are one line each (the token's payload is newline-separated): a recipient
    // from RCPT, a list and a tenant from notes.
    auto line = [&](size_t n) {
        std::string s = fdp.ConsumeRandomLengthString(n);
        std::erase(s, '\n');
        return s;
    };
    t.recipient = line(80);
    t.list = line(40);
    t.tenant = line(40);
    t.issued_s = fdp.ConsumeIntegralInRange<int64_t>(0, int64_t(1) << 40);
    auto back = verify_unsubscribe_token(secret, make_unsubscribe_token(secret, t));
    FUZZ_CHECK(back);
    FUZZ_CHECK(back->recipient == to_lower(t.recipient) && back->list == t.list &&
               back->tenant == t.tenant && back->issued_s == t.issued_s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider fdp(data, size);
    std::string secret = fdp.ConsumeBool() ? "s3cret" : fdp.ConsumeRandomLengthString(32);
    bool at_end = fdp.ConsumeBool();
    std::string name = fdp.ConsumeRandomLengthString(40);
    std::string value = fdp.ConsumeRandomLengthString(200);
    switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            verp(fdp, secret);
            break;
        case 1:
            unsubscribe(fdp, secret);
            break;
        default:
            break;
    }
    headers(fdp.ConsumeRemainingBytesAsString(), name, value, at_end);
    return 0;
}
