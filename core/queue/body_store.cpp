#include "core/queue/body_store.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log/log.h"
#include "core/spool/segment_files.h"

namespace kasi {

namespace {

struct ReadReq {
    uv_fs_t req;
    std::string buf;
    std::function<void(int, std::string)> cb;
    std::function<void()> after;  // bookkeeping on completion
};

struct UnlinkReq {
    uv_fs_t req;
};

}  // namespace

BodyStore::~BodyStore() {
    for (auto& [seq, s] : segs_)
        if (s.fd >= 0) ::close(s.fd);
}

int BodyStore::fd_for(uint64_t seg, Seg& s) {
    if (s.fd >= 0) return s.fd;
    std::string path = dir_ + "/" + segment_name(SegmentKind::msg, seg);
    s.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (s.fd < 0) log::error("queue: {}: {}", path, std::strerror(errno));
    return s.fd;
}

void BodyStore::read(const QueuedMessage& m, std::function<void(int, std::string)> cb) {
    Seg& s = segs_[m.segment];
    int fd = fd_for(m.segment, s);
    if (fd < 0) {
        cb(EIO, {});
        return;
    }
    // Fast path: a message written moments ago is in the page cache, and preadv2 with
    // RWF_NOWAIT returns it without blocking (EAGAIN otherwise). Only a cold read goes to
    // libuv's thread pool, so the loop never waits on the disk either way.
    std::string body(m.body_size, '\0');
    iovec iov{body.data(), body.size()};
    ssize_t got = m.body_size == 0 ? 0 : ::preadv2(fd, &iov, 1, off_t(m.body_offset), RWF_NOWAIT);
    if (got == ssize_t(m.body_size)) {
        ++fast_reads_;
        cb(0, std::move(body));
        return;
    }
    auto r = std::make_unique<ReadReq>();
    r->buf = std::move(body);
    r->cb = std::move(cb);
    uint64_t seg = m.segment;
    r->after = [this, seg] {
        auto it = segs_.find(seg);
        if (it == segs_.end()) return;
        --it->second.reads;
        maybe_delete(seg);
    };
    ++s.reads;
    uv_buf_t b = uv_buf_init(r->buf.data(), unsigned(r->buf.size()));
    auto* raw = r.release();
    raw->req.data = raw;
    int rc = uv_fs_read(loop_, &raw->req, fd, &b, 1, int64_t(m.body_offset), [](uv_fs_t* req) {
        std::unique_ptr<ReadReq> own(static_cast<ReadReq*>(req->data));
        ssize_t n = req->result;
        uv_fs_req_cleanup(req);
        own->after();
        if (n < 0) return own->cb(int(-n), {});
        if (size_t(n) != own->buf.size()) return own->cb(EIO, {});
        own->cb(0, std::move(own->buf));
    });
    if (rc != 0) {
        std::unique_ptr<ReadReq> own(raw);
        own->after();
        own->cb(-rc, {});
    }
}

void BodyStore::message_queued(uint64_t seg) {
    segs_[seg].queued++;
}

void BodyStore::message_finished(uint64_t seg) {
    auto it = segs_.find(seg);
    if (it == segs_.end()) return;
    it->second.finished++;
    maybe_delete(seg);
}

void BodyStore::segment_closed(uint64_t seg, uint64_t written) {
    segs_[seg].expected = int64_t(written);
    maybe_delete(seg);
}

void BodyStore::unlink_async(const std::string& path) {
    auto u = std::make_unique<UnlinkReq>();
    auto* raw = u.release();
    raw->req.data = raw;
    if (uv_fs_unlink(loop_, &raw->req, path.c_str(), [](uv_fs_t* req) {
            std::unique_ptr<UnlinkReq> own(static_cast<UnlinkReq*>(req->data));
            if (req->result < 0 && req->result != UV_ENOENT)
                log::warn("queue: removing {}: {}", req->path, uv_strerror(int(req->result)));
            uv_fs_req_cleanup(req);
        }) != 0) {
        std::unique_ptr<UnlinkReq> own(raw);
        uv_fs_req_cleanup(&own->req);
    }
}

void BodyStore::journal_closed(uint64_t meta_seq, std::vector<uint64_t> refs) {
    std::erase_if(refs, [this](uint64_t s) { return gone_.count(s) > 0; });
    journals_[meta_seq] = std::move(refs);
    msg_segment_gone(0);  // deletes it now if nothing it refers to is left
}

void BodyStore::msg_segment_gone(uint64_t seg) {
    if (seg) gone_.insert(seg);
    for (auto it = journals_.begin(); it != journals_.end();) {
        std::erase(it->second, seg);
        if (!it->second.empty()) {
            ++it;
            continue;
        }
        unlink_async(dir_ + "/" + segment_name(SegmentKind::meta, it->first));
        ++journals_deleted_;
        log::debug("queue: journal segment {} no longer needed; removed", it->first);
        it = journals_.erase(it);
    }
}

void BodyStore::maybe_delete(uint64_t seg) {
    auto it = segs_.find(seg);
    if (it == segs_.end()) return;
    Seg& s = it->second;
    if (s.expected < 0 || s.queued < uint64_t(s.expected) || s.finished < s.queued || s.reads)
        return;
    if (s.fd >= 0) ::close(s.fd);
    segs_.erase(it);
    ++deleted_;
    unlink_async(dir_ + "/" + segment_name(SegmentKind::msg, seg));
    msg_segment_gone(seg);
    log::debug("queue: segment {} finished and removed", seg);
}

}  // namespace kasi
