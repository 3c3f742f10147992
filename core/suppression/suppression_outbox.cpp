#include "core/suppression/suppression_outbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/clock.h"

namespace kasi {

namespace {

constexpr const char* prefix = "pg-outbox.";

// "pg-outbox.NODE.GEN" -> NODE, GEN (NODE: 16 hex digits).
bool parse_name(const std::string& name, std::string& node, uint64_t& gen) {
    if (name.rfind(prefix, 0) != 0) return false;
    std::string rest = name.substr(std::strlen(prefix));
    auto dot = rest.find('.');
    if (dot != 16) return false;
    node = rest.substr(0, dot);
    std::string g = rest.substr(dot + 1);
    if (g.empty() || g.size() > 18 || g.find_first_not_of("0123456789") != std::string::npos)
        return false;
    if (node.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
    gen = std::stoull(g);
    return true;
}

std::string random_node() {
    std::random_device rd;
    uint64_t v = (uint64_t(rd()) << 32) ^ rd();
    return fmt::format("{:016x}", v);
}

uint32_t le32(const char* p) {
    return uint32_t(uint8_t(p[0])) | uint32_t(uint8_t(p[1])) << 8 | uint32_t(uint8_t(p[2])) << 16 |
           uint32_t(uint8_t(p[3])) << 24;
}

bool pread_all(int fd, std::string& buf, uint64_t off) {
    size_t got = 0;
    while (got < buf.size()) {
        ssize_t r = ::pread(fd, buf.data() + got, buf.size() - got, off_t(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += size_t(r);
    }
    return true;
}

}  // namespace

SuppressionOutbox::SuppressionOutbox(Key, std::string dir) : dir_(std::move(dir)) {}

SuppressionOutbox::~SuppressionOutbox() {
    if (fd_ >= 0) ::close(fd_);
    if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::unique_ptr<SuppressionOutbox> SuppressionOutbox::open(const std::string& dir,
                                                           std::string& err) {
    auto o = std::make_unique<SuppressionOutbox>(Key{}, dir);
    o->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o->dir_fd_ < 0) {
        err = fmt::format("{}: {}", dir, std::strerror(errno));
        return nullptr;
    }
    if (!o->open_latest(err)) return nullptr;
    return o;
}

// The newest generation is the outbox; older ones were drained before it was made.
bool SuppressionOutbox::open_latest(std::string& err) {
    std::vector<std::string> names;
    std::string best;
    {
        std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir_.c_str()), ::closedir);
        if (!d) {
            err = fmt::format("{}: {}", dir_, std::strerror(errno));
            return false;
        }
        while (auto* e = ::readdir(d.get())) {
            std::string node;
            uint64_t gen = 0;
            if (!parse_name(e->d_name, node, gen)) continue;
            names.push_back(e->d_name);
            if (best.empty() || gen > gen_) best = e->d_name, node_ = node, gen_ = gen;
        }
    }
    if (best.empty()) return create(1, err);
    for (const auto& n : names) {
        if (n == best) continue;
        log::info("suppression: {}/{}: an outbox already drained, removed", dir_, n);
        ::unlinkat(dir_fd_, n.c_str(), 0);
    }
    if (names.size() > 1) ::fsync(dir_fd_);
    path_ = dir_ + "/" + best;
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
        err = fmt::format("{}: {}", path_, std::strerror(errno));
        return false;
    }
    return load(err);
}

// A new, empty file of generation `gen`, durable (its directory entry too) when this returns.
bool SuppressionOutbox::create(uint64_t gen, std::string& err) {
    if (node_.empty()) node_ = random_node();
    std::string path = fmt::format("{}/{}{}.{}", dir_, prefix, node_, gen);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    std::string h = journal_header();
    if (fd < 0 || !pwrite_all(fd, h, 0) || ::fdatasync(fd) != 0 || ::fsync(dir_fd_) != 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        if (fd >= 0) ::close(fd);
        ::unlink(path.c_str());  // a later open must not take it for the newest generation
        return false;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    path_ = path;
    gen_ = gen;
    offsets_.clear();
    end_ = durable_end_ = h.size();
    pub_gen_ = gen_;
    pub_records_ = 0;
    return true;
}

// Indexes the records of the file open at fd_ (and cuts a torn tail off).
bool SuppressionOutbox::load(std::string& err) {
    JournalScan scan;
    uint64_t at = journal_header_size;
    std::string framed;
    auto fn = [&](const JournalRecord& r) {
        offsets_.push_back(at);
        framed.clear();
        append_record(framed, r);  // the encoding is canonical: the same length as read
        at += framed.size();
    };
    if (!scan_journal(fd_, path_, fn, scan, err)) return false;
    pub_gen_ = gen_;
    pub_records_ = offsets_.size();
    if (scan.fresh) {
        std::string h = journal_header();
        if (::ftruncate(fd_, 0) != 0 || !pwrite_all(fd_, h, 0) || ::fdatasync(fd_) != 0) {
            err = fmt::format("{}: {}", path_, std::strerror(errno));
            return false;
        }
        end_ = durable_end_ = h.size();
        return true;
    }
    if (at != scan.end) {
        err = fmt::format("{}: records do not add up ({} != {})", path_, at, scan.end);
        return false;
    }
    if (scan.torn) {
        log::warn("suppression: {}: dropping a torn tail of {} bytes at byte offset {}", path_,
                  scan.file_size - scan.end, scan.end);
        if (::ftruncate(fd_, off_t(scan.end)) != 0 || ::fdatasync(fd_) != 0) {
            err = fmt::format("{}: truncating the torn tail: {}", path_, std::strerror(errno));
            return false;
        }
    }
    end_ = durable_end_ = scan.end;
    return true;
}

// Group commit, as in the store: each appender writes under the lock, then waits for an
// fdatasync that covers its bytes; one that finds no sync running leads one for everything
// written so far, outside the lock, while the next group collects.
bool SuppressionOutbox::append(const std::vector<JournalRecord>& changes, std::string& err) {
    if (changes.empty()) return true;
    std::unique_lock lk(mu_);
    if (refuse_if_broken(err)) return false;
    int64_t at = now_ms() / 1000;
    std::string bytes;
    std::vector<uint64_t> starts;
    starts.reserve(changes.size());
    for (const auto& c : changes) {
        starts.push_back(end_ + bytes.size());
        JournalRecord r = c;
        r.at = at;
        append_record(bytes, r);
    }
    if (!pwrite_all(fd_, bytes, end_)) {
        int e = errno;
        // A partial write must not stay behind the next one (the last writer is us).
        if (::ftruncate(fd_, off_t(end_)) != 0) broken_ = errno;
        err = fmt::format("{}: write: {}", path_, std::strerror(e));
        return false;
    }
    end_ += bytes.size();
    unsynced_.insert(unsynced_.end(), starts.begin(), starts.end());
    uint64_t mine = ++written_seq_;
    while (durable_seq_ < mine) {
        if (refuse_if_broken(err)) return false;
        if (!syncing_)
            lead_sync(lk);
        else
            sync_cv_.wait(lk);
    }
    return true;
}

void SuppressionOutbox::lead_sync(std::unique_lock<std::mutex>& lk) {
    syncing_ = true;
    uint64_t seq = written_seq_, end = end_;
    std::vector<uint64_t> starts;
    starts.swap(unsynced_);
    int fd = fd_;
    lk.unlock();
    int rc = ::fdatasync(fd);
    int e = errno;
    lk.lock();
    syncing_ = false;
    if (rc != 0) {
        broken_ = e;  // the file's state is unknown
        log::error("suppression: fdatasync of {} failed: {}; refusing changes", path_,
                   std::strerror(e));
    } else {
        offsets_.insert(offsets_.end(), starts.begin(), starts.end());
        durable_end_ = end;
        durable_seq_ = seq;
        pub_records_ = offsets_.size();
    }
    sync_cv_.notify_all();
}

bool SuppressionOutbox::refuse_if_broken(std::string& err) const {
    if (!broken_) return false;
    err = fmt::format("{}: an earlier write or fdatasync failed ({}); changes are refused", path_,
                      std::strerror(broken_));
    return true;
}

SuppressionOutbox::Head SuppressionOutbox::head() const {
    std::lock_guard lk(mu_);
    return Head{fmt::format("{}.{}", node_, gen_), node_, gen_, offsets_.size(), durable_end_};
}

bool SuppressionOutbox::read(const std::string& id, uint64_t from, size_t max,
                             std::vector<JournalRecord>& out, std::string& err) const {
    out.clear();
    std::lock_guard lk(mu_);
    if (id != fmt::format("{}.{}", node_, gen_)) {
        err = fmt::format("{}: outbox {} is no longer current", path_, id);
        return false;
    }
    if (from >= offsets_.size()) return true;
    uint64_t to = std::min<uint64_t>(offsets_.size(), from + max);
    uint64_t first = offsets_[from];
    uint64_t last = to < offsets_.size() ? offsets_[to] : durable_end_;
    std::string buf(last - first, '\0');
    if (!pread_all(fd_, buf, first)) {
        err = fmt::format("{}: read: {}", path_, std::strerror(errno));
        return false;
    }
    std::string_view s(buf);
    while (s.size() >= journal_prefix_size) {
        uint32_t n = le32(s.data());
        if (s.size() < journal_prefix_size + n) break;
        JournalRecord r;
        if (!decode_record(s.substr(journal_prefix_size, n), r, err)) {
            err = fmt::format("{}: record {}: {}", path_, from + out.size(), err);
            return false;
        }
        out.push_back(std::move(r));
        s.remove_prefix(journal_prefix_size + n);
    }
    if (out.size() != to - from) {
        err = fmt::format("{}: records {} to {} do not parse", path_, from, to);
        return false;
    }
    return true;
}

bool SuppressionOutbox::rotate_if_drained(const std::string& id, uint64_t pushed,
                                          std::string& err) {
    std::lock_guard lk(mu_);
    if (broken_ || !quiet() || id != fmt::format("{}.{}", node_, gen_) ||
        pushed != offsets_.size() || durable_end_ <= rotate_bytes_)
        return false;
    std::string old = path_;
    if (!create(gen_ + 1, err)) return false;
    if (::unlink(old.c_str()) != 0 || ::fsync(dir_fd_) != 0)
        log::warn("suppression: removing the drained outbox {}: {}", old, std::strerror(errno));
    return true;
}

}  // namespace kasi
