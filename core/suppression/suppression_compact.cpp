// SuppressionStore::compact: rewriting the journal to hold only what is live. The steps
// and why a fuzzy snapshot is enough are in suppression_store.h.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/suppression/suppression_store.h"

namespace kasi {

namespace {

constexpr uint32_t snapshot_slice = 4096;  // table records per shared-lock hold
constexpr size_t write_chunk = 1 << 20;

}  // namespace

// Step 1. New syncs are held back while it waits for a running one, so that a busy store
// cannot keep the point from being fixed.
bool SuppressionStore::fix_point(Point& p, std::string& err) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !swapping_; });
    swapping_ = true;
    cv_.wait(lk, [&] { return !syncing_; });
    swapping_ = false;
    cv_.notify_all();
    if (refuse_if_broken(err)) return false;
    p.end = applied_end_;
    p.records = applied_records_;
    p.horizon = horizon();
    return true;
}

// Step 2: every entry in force at the horizon, as adds written at the horizon.
bool SuppressionStore::write_snapshot(int out, int64_t horizon, Snapshot& n, std::string& err) {
    std::string buf = journal_header();
    JournalRecord rec;
    rec.at = horizon;
    auto flush = [&] {
        if (!pwrite_all(out, buf, n.size)) return false;
        n.size += buf.size();
        buf.clear();
        return true;
    };
    for (uint32_t i = 0;; i += snapshot_slice) {
        {
            std::shared_lock r(table_mu_);
            uint32_t total = table_.records();
            if (i >= total) break;
            for (uint32_t k = i, stop = std::min(total - i, snapshot_slice) + i; k < stop; ++k) {
                if (!table_.live(k) || table_.expired(k, horizon)) continue;
                rec.entry = table_.entry(k);
                append_record(buf, rec);
                ++n.records;
            }
        }
        if (buf.size() >= write_chunk && !flush()) break;
    }
    if (!buf.empty() && !flush()) {
        err = fmt::format("{}.compact: write: {}", path_, std::strerror(errno));
        return false;
    }
    n.snap_size = n.size;
    n.snap_records = n.records;
    return true;
}

// Step 3 (and 4): the old journal's bytes [n.copied, to) onto the end of the new file.
// Only the compaction replaces fd_, so reading it here without mu_ is safe; bytes before
// file_end_ are never truncated while the store is healthy.
bool SuppressionStore::copy_tail(int out, uint64_t to, Snapshot& n, std::string& err) {
    std::string buf;
    while (n.copied < to) {
        buf.resize(size_t(std::min<uint64_t>(write_chunk, to - n.copied)));
        ssize_t r = ::pread(fd_.get(), buf.data(), buf.size(), off_t(n.copied));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            err = fmt::format("{}: read: {}", path_,
                              r == 0 ? "unexpected end" : std::strerror(errno));
            return false;
        }
        buf.resize(size_t(r));
        if (!pwrite_all(out, buf, n.size)) {
            err = fmt::format("{}.compact: write: {}", path_, std::strerror(errno));
            return false;
        }
        n.size += buf.size();
        n.copied += buf.size();
    }
    return true;
}

// Step 4, writers held back: the last records, then the new file takes the journal's name.
bool SuppressionStore::swap_in(Fd& out, const std::string& tmp, const Point& p, Snapshot& n,
                               std::string& err) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !swapping_; });
    swapping_ = true;
    cv_.wait(lk, [&] { return !syncing_; });
    struct Release {  // writers resume however this ends
        SuppressionStore* s;
        ~Release() {
            s->swapping_ = false;
            s->cv_.notify_all();
        }
    } release{this};
    if (refuse_if_broken(err) || !copy_tail(out.get(), file_end_, n, err)) return false;
    if (::fdatasync(out.get()) != 0 || ::rename(tmp.c_str(), path_.c_str()) != 0) {
        err = fmt::format("{}: {}", tmp, std::strerror(errno));
        return false;
    }
    // The new file is the journal now. Until the rename is durable a crash would bring
    // back the old one, without what is appended from here on: refuse changes if not.
    if (::fsync(dir_fd_.get()) != 0) {
        broken_ = errno;
        log::error("suppression: fsync of {} after compaction: {}", dir_, std::strerror(errno));
    }
    auto moved = [&](uint64_t off) { return off - p.end + n.snap_size; };
    auto moved_records = [&](uint64_t r) { return r - p.records + n.snap_records; };
    for (auto& b : queued_) {
        b.end = moved(b.end);
        b.records = moved_records(b.records);
    }
    applied_end_ = moved(applied_end_);
    applied_records_ = moved_records(applied_records_);
    journal_records_ = moved_records(journal_records_);
    file_end_ = moved(file_end_);
    n.records = journal_records_;
    fd_.swap(out);  // `out` closes the old journal
    ++compactions_;
    return true;
}

bool SuppressionStore::compact(std::string& err) {
    std::lock_guard one(maint_mu_);
    auto t0 = std::chrono::steady_clock::now();
    uint64_t before_records, before_bytes;
    {
        std::lock_guard lk(mu_);
        before_records = journal_records_;
        before_bytes = file_end_;
    }
    Point p;
    if (!fix_point(p, err)) return false;
    sweep_at(p.horizon);
    std::string tmp = path_ + ".compact";
    Fd out(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (out.get() < 0) {
        err = fmt::format("{}: {}", tmp, std::strerror(errno));
        return false;
    }
    Snapshot n;
    n.copied = p.end;
    uint64_t durable_end;
    {
        std::lock_guard lk(mu_);
        durable_end = file_end_;
    }
    bool ok =
        write_snapshot(out.get(), p.horizon, n, err) && copy_tail(out.get(), durable_end, n, err);
    if (ok && ::fdatasync(out.get()) != 0) {  // the bulk, before writers are held back
        err = fmt::format("{}: fdatasync: {}", tmp, std::strerror(errno));
        ok = false;
    }
    if (!ok || !swap_in(out, tmp, p, n, err)) {
        ::unlink(tmp.c_str());
        return false;
    }
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    log::info("suppression: compacted {}: {} records in {} bytes (was {} in {}), {} ms", path_,
              n.records, n.size, before_records, before_bytes, ms);
    return true;
}

}  // namespace kasi
