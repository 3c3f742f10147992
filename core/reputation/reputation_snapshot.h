// The reputation matrix on disk: what lets its windows survive a restart. The reputation
// service writes one every snapshot_interval and at stop (a temporary file, fsync, rename:
// a crash leaves the previous whole snapshot), and reads it back at start. A crash loses at
// most the outcomes of the last interval, which only makes the window a little younger;
// nothing acknowledged depends on it.
//
// The format is text, one record per line, so an operator can read it and a damaged line
// costs only itself:
//
//   kasi-reputation 1 BUCKET_SECONDS BUCKETS      the header (the format's version 1)
//   c TAB source TAB domain TAB provider TAB tenant   a cell ("" = a roll-up's wildcard)
//   b TAB start TAB key:count,key:count,...           a bucket of the cell above
//
// Fields are percent-encoded as the spool's tokens are (escape_token: '%', space, control
// and non-ASCII bytes), so a name never holds a tab or a newline. A key is
// outcome * 64 + class index (reputation_window.h). Reading is strict per line: a line that
// does not parse is skipped and counted, a bucket before any cell is skipped, buckets the
// window no longer covers are left out; a missing or foreign header refuses the whole file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/reputation/reputation_matrix.h"

namespace kasi {

std::string write_reputation_snapshot(const ReputationMatrix& m);

struct SnapshotRead {
    uint64_t cells = 0, buckets = 0, bad_lines = 0;
    size_t first_bad_line = 0;  // 1-based; 0 = none
};

// Adds what `text` holds to `m` (normally empty); false with `err` when the header is not
// a version-1 snapshot header.
bool read_reputation_snapshot(std::string_view text, ReputationMatrix& m, int64_t now,
                              SnapshotRead& stats, std::string& err);

}  // namespace kasi
