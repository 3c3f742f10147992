#include "core/spool/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "core/log/log.h"

namespace kasi {

Spool::~Spool() {
    close();
}

static bool mkdir_p(const std::string& dir, std::string& err) {
    std::string cur;
    for (size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || (dir[i] == '/' && i > 0)) {
            cur = dir.substr(0, i);
            if (::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) {
                err = fmt::format("{}: {}", cur, std::strerror(errno));
                return false;
            }
        }
    }
    return true;
}

bool Spool::open(const std::string& dir, std::string& err,
                 std::function<void(SpooledMessage&)> on_live) {
    dir_ = dir;
    if (!mkdir_p(dir, err)) return false;
    std::string lock = dir + "/lock";
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd_ < 0) {
        err = fmt::format("{}: {}", lock, std::strerror(errno));
        return false;
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        err = fmt::format("{}: the spool is in use by another kasi process", dir);
        return false;
    }
    // The writer starts first, after the highest existing segment numbers, so that the
    // compaction records can be written while the old segments are read.
    std::vector<SegmentFile> msgs0, metas0;
    if (!list_segments(dir, SegmentKind::msg, msgs0, err) ||
        !list_segments(dir, SegmentKind::meta, metas0, err))
        return false;
    uint64_t max_msg = 0, max_meta = 0;
    for (const auto& s : msgs0) max_msg = std::max(max_msg, s.seq);
    for (const auto& s : metas0) max_meta = std::max(max_meta, s.seq);
    writer_ = std::make_unique<SpoolWriter>(dir, SpoolWriterOptions{segment_bytes_});
    writer_->on_rotate = [this](uint64_t seq, uint64_t n) {
        std::lock_guard lk(rotate_mu_);
        if (rotate_listener_) rotate_listener_(seq, n);
    };
    writer_->on_meta_rotate = [this](uint64_t seq, std::vector<uint64_t> refs) {
        std::lock_guard lk(rotate_mu_);
        if (meta_listener_) meta_listener_(seq, std::move(refs));
    };
    if (!writer_->start(max_msg + 1, max_meta + 1, err)) return false;
    // Compact: the live state goes into the new journal segment, then the old ones go.
    // One counter for all of them, and at most 8192 records in flight: a million live
    // messages must cost neither a million futures nor a million queued requests.
    struct Pending {
        std::mutex mu;
        std::condition_variable cv;
        size_t left = 0;
        int err = 0;
    };
    auto pend = std::make_shared<Pending>();
    auto emit = [&](StateUpdate& u, uint64_t seg) {
        {
            std::unique_lock lk(pend->mu);
            pend->cv.wait(lk, [&] { return pend->left < 8192; });
            ++pend->left;
        }
        SpoolRequest req{RecordType::state, u.serialize(), {}, [pend](const SpoolResult& r) {
                             std::lock_guard lk(pend->mu);
                             if (r.err && !pend->err) pend->err = r.err;
                             if (--pend->left < 4096) pend->cv.notify_all();
                         }};
        req.ref_msg_seq = seg;
        writer_->submit(std::move(req));
    };
    // A finished message whose segment survives (it shares it with live ones) needs its
    // "done" mark carried over too, or it would come back to life at the next start; that
    // is known at the end of its segment.
    std::vector<std::string> done_here;
    size_t live_here = 0, live_total = 0;
    bool ok = stream_spool(
        dir, recovered_, err, /*lean=*/true,
        [&](SpooledMessage& m) {
            if (m.done) {
                done_here.push_back(m.env.id);
                return;
            }
            ++live_here;
            ++live_total;
            if (m.state.attempts != 0 || !m.state.history.empty()) {
                StateUpdate u;
                u.id = m.env.id;
                u.attempts = m.state.attempts;
                u.next_due_ms = m.state.next_due_ms;
                for (size_t i = 0; i < m.state.rcpts.size(); ++i)
                    u.rcpts.push_back({i, m.state.rcpts[i]});
                emit(u, m.segment);
            }
            if (on_live)
                on_live(m);
            else
                recovered_.messages.push_back(std::move(m));
        },
        [&](uint64_t seq) {
            if (live_here > 0)
                for (auto& id : done_here) {
                    StateUpdate u;
                    u.id = std::move(id);
                    u.done = true;
                    emit(u, seq);
                }
            done_here.clear();
            live_here = 0;
        },
        max_msg, max_meta);
    {
        std::unique_lock lk(pend->mu);
        pend->cv.wait(lk, [&] { return pend->left == 0; });
        if (ok && pend->err) {
            err = fmt::format("{}: compacting the journal: {}", dir, std::strerror(pend->err));
            return false;
        }
    }
    if (!ok) return false;
    for (const auto& t : recovered_.torn) {
        log::notice(
            "spool: {}: discarding {} bytes of an unfinished write at offset {} ({}); "
            "it was never acknowledged",
            t.path, t.file_size - t.valid_end, t.valid_end, t.problem);
        if (::truncate(t.path.c_str(), off_t(t.valid_end)) != 0)
            log::warn("spool: {}: truncate: {}", t.path, std::strerror(errno));
    }
    for (const auto& p : recovered_.problems) log::error("spool: {}", p);
    for (const auto& s : metas0) ::unlink(s.path.c_str());
    for (const auto& s : msgs0)
        if (!recovered_.live_per_segment.count(s.seq)) ::unlink(s.path.c_str());
    if (live_total) log::info("spool: recovered {} queued messages from {}", live_total, dir_);
    return true;
}

void Spool::set_rotate_listener(std::function<void(uint64_t, uint64_t)> fn) {
    std::lock_guard lk(rotate_mu_);
    rotate_listener_ = std::move(fn);
}

void Spool::set_meta_listener(std::function<void(uint64_t, std::vector<uint64_t>)> fn) {
    std::lock_guard lk(rotate_mu_);
    meta_listener_ = std::move(fn);
}

void Spool::close() {
    if (writer_) writer_->stop();
    writer_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
}

void Spool::submit_message(const Envelope& env, std::string body,
                           std::function<void(const SpoolResult&)> done) {
    std::string head = env.serialize();
    uint64_t skip = record_header_size + 4 + head.size();
    writer_->submit(SpoolRequest{RecordType::message, std::move(head), std::move(body),
                                 [skip, done = std::move(done)](const SpoolResult& r) {
                                     SpoolResult out = r;
                                     out.body_offset = r.offset + skip;
                                     done(out);
                                 }});
}

void Spool::submit_state(const StateUpdate& u, std::function<void(const SpoolResult&)> done,
                         bool lazy, uint64_t ref_msg_seq) {
    SpoolRequest r{RecordType::state, u.serialize(), {}, std::move(done)};
    r.lazy = lazy;
    r.ref_msg_seq = ref_msg_seq;
    writer_->submit(std::move(r));
}

}  // namespace kasi
