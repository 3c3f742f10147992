#include "core/spool/writer.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <uv.h>

#include "core/metrics/metrics.h"

#include "core/log/log.h"
#include "core/util/clock.h"

namespace kasi {

SpoolWriter::~SpoolWriter() {
    stop();
}

bool SpoolWriter::open_segment(Active& seg, uint64_t seq, std::string& err) {
    std::string path = dir_ + "/" + segment_name(seg.kind, seq);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        return false;
    }
    // The directory entry must be durable before any record in the file is acknowledged.
    if (::fsync(dir_fd_) != 0) {
        err = fmt::format("{}: fsync of the directory: {}", dir_, std::strerror(errno));
        ::close(fd);
        ::unlink(path.c_str());
        return false;
    }
    seg.fd = fd;
    seg.seq = seq;
    seg.size = 0;
    if (seg.kind == SegmentKind::msg) current_msg_seq_.store(seq);
    return true;
}

void SpoolWriter::close_segment(Active& seg) {
    if (seg.fd >= 0) ::close(seg.fd);
    seg.fd = -1;
}

bool SpoolWriter::start(uint64_t next_msg_seq, uint64_t next_meta_seq, std::string& err) {
    dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
        err = fmt::format("{}: {}", dir_, std::strerror(errno));
        return false;
    }
    if (!open_segment(msg_, next_msg_seq, err) || !open_segment(meta_, next_meta_seq, err))
        return false;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "kasi-spool");
        run();
    });
    return true;
}

void SpoolWriter::submit(SpoolRequest r) {
    bool refused = false, lazy = false, wake = false;
    {
        std::lock_guard lk(mu_);
        if (stopping_) {
            refused = true;
        } else {
            lazy = r.lazy;
            if (!lazy) ++urgent_;
            pending_.push_back(std::move(r));
            wake = !lazy || pending_.size() >= 4096;
        }
    }
    if (refused) {
        SpoolResult res{ESHUTDOWN};
        if (r.done) r.done(res);
        return;
    }
    if (wake) cv_.notify_one();
}

void SpoolWriter::stop() {
    {
        std::lock_guard lk(mu_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (meta_unsynced_ && meta_.fd >= 0) ::fdatasync(meta_.fd);
    close_segment(msg_);
    close_segment(meta_);
    if (dir_fd_ >= 0) ::close(dir_fd_);
    dir_fd_ = -1;
}

SpoolWriter::Stats SpoolWriter::stats() {
    std::lock_guard lk(mu_);
    return stats_;
}

void SpoolWriter::run() {
    std::vector<SpoolRequest> batch;
    for (;;) {
        {
            std::unique_lock lk(mu_);
            cv_.wait_for(lk, std::chrono::milliseconds(lazy_flush_ms),
                         [&] { return stopping_ || urgent_ > 0 || pending_.size() >= 4096; });
            if (pending_.empty()) {
                if (stopping_) return;
                lk.unlock();
                sync_meta_if_stale();
                probe_space();
                continue;
            }
            // Take everything pending, up to batch_bytes (at least one record).
            uint64_t bytes = 0;
            size_t n = 0;
            while (n < pending_.size() && (n == 0 || bytes < opts_.batch_bytes)) {
                bytes += pending_[n].head.size() + pending_[n].body.size();
                ++n;
            }
            for (size_t k = 0; k < n; ++k) urgent_ -= !pending_[k].lazy;
            if (n == pending_.size()) {
                batch.swap(pending_);
            } else {
                batch.assign(std::make_move_iterator(pending_.begin()),
                             std::make_move_iterator(pending_.begin() + long(n)));
                pending_.erase(pending_.begin(), pending_.begin() + long(n));
            }
        }
        write_batch(batch);
        batch.clear();
    }
}

// Appends the records to one segment with writev; returns 0 or an errno. On failure the
// segment is truncated back to its size before the call.
int SpoolWriter::append(Active& seg, std::vector<SpoolRequest*>& reqs,
                        std::vector<uint8_t>& headers, std::vector<std::string>& lens) {
    if (reqs.empty()) return 0;
    headers.resize(reqs.size() * record_header_size);
    lens.resize(reqs.size());
    std::vector<iovec> iov;
    iov.reserve(reqs.size() * 4);
    uint64_t at = seg.size;
    for (size_t i = 0; i < reqs.size(); ++i) {
        auto* r = reqs[i];
        r->offset = at;
        at += record_header_size + (r->type == RecordType::message ? 4 : 0) + r->head.size() +
              r->body.size();
        uint8_t* h = headers.data() + i * record_header_size;
        if (r->type == RecordType::message) {
            uint32_t n = uint32_t(r->head.size());
            lens[i] = std::string{char(n), char(n >> 8), char(n >> 16), char(n >> 24)};
            encode_record_header(h, r->type, lens[i], r->head, r->body);
        } else {
            lens[i].clear();
            encode_record_header(h, r->type, r->head);
        }
        iov.push_back({h, record_header_size});
        for (std::string* s : {&lens[i], &r->head, &r->body})
            if (!s->empty()) iov.push_back({s->data(), s->size()});
    }
    uint64_t start = seg.size;
    size_t idx = 0;
    uint64_t written = 0;
    while (idx < iov.size()) {
        int cnt = int(std::min<size_t>(iov.size() - idx, IOV_MAX));
        ssize_t w = ::pwritev(seg.fd, iov.data() + idx, cnt, off_t(start + written));
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            if (::ftruncate(seg.fd, off_t(start)) != 0) {
            }
            return e;
        }
        if (w == 0) {
            if (::ftruncate(seg.fd, off_t(start)) != 0) {
            }
            return ENOSPC;
        }
        written += uint64_t(w);
        size_t left = size_t(w);
        while (left > 0 && idx < iov.size()) {  // advance past what was written
            if (left >= iov[idx].iov_len) {
                left -= iov[idx].iov_len;
                ++idx;
            } else {
                iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
                iov[idx].iov_len -= left;
                left = 0;
            }
        }
    }
    seg.size = start + written;
    return 0;
}

void SpoolWriter::sync_meta_if_stale() {
    if (!meta_unsynced_ || meta_.fd < 0 || now_ms() - last_meta_sync_ms_ < lazy_flush_ms * 50)
        return;
    if (::fdatasync(meta_.fd) == 0) {
        last_meta_sync_ms_ = now_ms();
        meta_unsynced_ = false;
    }
}

void SpoolWriter::set_failing(int err, uint64_t batch_bytes) {
    int was = write_error_.exchange(err, std::memory_order_relaxed);
    if (err) {
        failed_bytes_ = batch_bytes;
        last_probe_ms_ = now_ms();
        if (!was)
            log::error(
                "spool: write to {} failed: {}; refusing messages with 452 until it succeeds", dir_,
                std::strerror(err));
    } else if (was) {
        log::notice("spool: writes to {} succeed again", dir_);
    }
}

void SpoolWriter::probe_space() {
    if (write_error_.load(std::memory_order_relaxed) == 0 || msg_.fd < 0 || meta_.fd < 0 ||
        now_ms() - last_probe_ms_ < probe_interval_ms)
        return;
    last_probe_ms_ = now_ms();
    struct TmpFile {  // unnamed: its space is freed on close
        int fd;
        ~TmpFile() {
            if (fd >= 0) ::close(fd);
        }
    } f{::openat(dir_fd_, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600)};
    if (f.fd < 0) return;  // no O_TMPFILE here: the next real write tells
    static const char block[4096] = {};
    off_t want = off_t(std::clamp<uint64_t>(failed_bytes_, sizeof block, 1 << 20));
    if (::posix_fallocate(f.fd, 0, want) != 0 || ::pwrite(f.fd, block, sizeof block, 0) <= 0 ||
        ::fdatasync(f.fd) != 0)
        return;
    log::notice("spool: {} has room for {} bytes again: accepting messages", dir_, want);
    write_error_.store(0, std::memory_order_relaxed);
}

void SpoolWriter::write_batch(std::vector<SpoolRequest>& batch) {
    uint64_t t0 = uv_hrtime();
    std::vector<SpoolRequest*> msgs, metas;
    for (auto& r : batch) (r.type == RecordType::message ? msgs : metas).push_back(&r);
    std::vector<uint8_t> headers;
    std::vector<std::string> lens;
    uint64_t msg_start = msg_.size, meta_start = meta_.size;
    int err = 0;
    if (msg_.fd < 0 || meta_.fd < 0) err = EIO;
    if (!err) err = append(msg_, msgs, headers, lens);
    if (!err) err = append(meta_, metas, headers, lens);
    bool sync_failed = false;
    if (!err && !msgs.empty() && ::fdatasync(msg_.fd) != 0) err = errno, sync_failed = true;
    // The journal is synced when a record in it needs durability; lazy progress records
    // alone wait for a later sync (at most lazy_flush_ms * 50 later).
    bool meta_urgent = msgs.empty() || now_ms() - last_meta_sync_ms_ >= lazy_flush_ms * 50;
    for (auto* r : metas) meta_urgent |= !r->lazy;
    if (!err && !metas.empty() && meta_urgent) {
        if (::fdatasync(meta_.fd) != 0)
            err = errno, sync_failed = true;
        else
            last_meta_sync_ms_ = now_ms(), meta_unsynced_ = false;
    } else if (!err && !metas.empty()) {
        meta_unsynced_ = true;
    }
    if (err) {
        if (msg_.fd >= 0 && ::ftruncate(msg_.fd, off_t(msg_start)) == 0) msg_.size = msg_start;
        if (meta_.fd >= 0 && ::ftruncate(meta_.fd, off_t(meta_start)) == 0) meta_.size = meta_start;
        if (sync_failed || msg_.fd < 0 || meta_.fd < 0) {
            for (Active* seg : {&msg_, &meta_}) retire(*seg, false);
        }
        uint64_t bytes = 0;
        for (const auto& r : batch) bytes += record_header_size + r.head.size() + r.body.size();
        set_failing(err, bytes);
    } else {
        set_failing(0, 0);
    }
    {
        std::lock_guard lk(mu_);
        stats_.batches++;
        stats_.records += batch.size();
        stats_.syncs += (!msgs.empty()) + (!metas.empty());
        if (err) stats_.failures++;
    }
    auto& cm = CoreMetrics::global();
    cm.spool_sync.observe_ns(uv_hrtime() - t0);
    cm.spool_records.fetch_add(batch.size(), std::memory_order_relaxed);
    // Report in submission order.
    if (!err) {
        msg_records_ += msgs.size();
        for (auto* r : metas)
            if (r->ref_msg_seq) meta_refs_.insert(r->ref_msg_seq);
    }
    for (auto& r : batch) {
        SpoolResult res{err, r.type == RecordType::message ? msg_.seq : meta_.seq,
                        err ? 0 : r.offset};
        if (r.done) r.done(res);
    }
    for (Active* seg : {&msg_, &meta_})
        if (!err && seg->size >= opts_.segment_bytes) retire(*seg, true);
}

// Closes a segment for good (full, or abandoned after a failed sync), opens the next one
// and tells the listener what the closed one holds.
void SpoolWriter::retire(Active& seg, bool sync_pending) {
    uint64_t old = seg.seq;
    if (sync_pending && seg.kind == SegmentKind::meta && meta_unsynced_ && seg.fd >= 0 &&
        ::fdatasync(seg.fd) == 0) {
        meta_unsynced_ = false;
        last_meta_sync_ms_ = now_ms();
    }
    std::string e;
    close_segment(seg);
    if (!open_segment(seg, old + 1, e)) log::error("spool: {}", e);
    if (seg.kind == SegmentKind::msg) {
        if (on_rotate) on_rotate(old, msg_records_);
        msg_records_ = 0;
    } else {
        std::vector<uint64_t> refs(meta_refs_.begin(), meta_refs_.end());
        meta_refs_.clear();
        if (on_meta_rotate) on_meta_rotate(old, std::move(refs));
    }
}

}  // namespace kasi
