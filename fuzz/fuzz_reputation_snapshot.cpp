// The reputation snapshot reader (core/reputation/reputation_snapshot.h) on any file.
// Properties: it never crashes and either refuses the header with a reason or reads what it
// can; what it read, written again and read back, is written identically (a snapshot of a
// snapshot loses nothing), and counts every line it could not read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/reputation/reputation_snapshot.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    const int64_t now = 1'800'000'000;
    kasi::ReputationMatrix m(1000, 3600, 24);
    kasi::SnapshotRead st;
    std::string err;
    if (!kasi::read_reputation_snapshot(text, m, now, st, err)) {
        FUZZ_CHECK(!err.empty());
        FUZZ_CHECK(m.size() == 0);
        return 0;
    }
    FUZZ_CHECK(st.bad_lines == 0 || st.first_bad_line >= 2);
    std::string once = kasi::write_reputation_snapshot(m);
    kasi::ReputationMatrix again(1000, 3600, 24);
    kasi::SnapshotRead st2;
    FUZZ_CHECK(kasi::read_reputation_snapshot(once, again, now, st2, err));
    FUZZ_CHECK(st2.bad_lines == 0);
    FUZZ_CHECK(kasi::write_reputation_snapshot(again) == once);
    return 0;
}
