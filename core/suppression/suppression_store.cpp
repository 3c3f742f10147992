#include "core/suppression/suppression_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t commit_slice = 4096;  // changes per journal append
constexpr size_t apply_slice = 1024;   // changes per exclusive hold of the table
constexpr uint32_t scan_slice = 4096;  // records per hold when walking the table

using fs_path = std::filesystem::path;

int64_t now_s() {
    return now_ms() / 1000;
}

char lower_c(char c) {
    return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}

// normalize_address() into a buffer on the stack: trimmed, ASCII lower-cased. nullopt when
// the address is longer than a stored one may be, so that no entry can match it.
using AddressBuf = std::array<char, suppression_max_address>;
std::optional<std::string_view> normalize_into(AddressBuf& buf, std::string_view address) {
    std::string_view t = trim(address);
    if (t.size() > buf.size()) return std::nullopt;
    for (size_t i = 0; i < t.size(); ++i) buf[i] = lower_c(t[i]);
    return std::string_view(buf.data(), t.size());
}

}  // namespace

SuppressionScopeName::SuppressionScopeName(std::string_view prefix, std::string_view name,
                                           bool lower_name) {
    if (prefix.size() + name.size() > sizeof buf_) return;
    std::memcpy(buf_, prefix.data(), prefix.size());
    for (size_t i = 0; i < name.size(); ++i)
        buf_[prefix.size() + i] = lower_name ? lower_c(name[i]) : name[i];
    len_ = prefix.size() + name.size();
    fits_ = true;
}

void SuppressionStore::Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

SuppressionStore::SuppressionStore(Key, std::string dir, SuppressionOptions opts)
    : dir_(std::move(dir)), path_(dir_ + "/suppressions.journal"), opts_(std::move(opts)) {}

SuppressionStore::~SuppressionStore() {
    {
        std::lock_guard lk(bg_mu_);
        bg_stop_ = true;
    }
    bg_cv_.notify_all();
    if (bg_.joinable()) bg_.join();
}

std::unique_ptr<SuppressionStore> SuppressionStore::open(const std::string& dir, std::string& err) {
    return open(dir, SuppressionOptions{}, err);
}

std::unique_ptr<SuppressionStore> SuppressionStore::open(const std::string& dir,
                                                         SuppressionOptions opts,
                                                         std::string& err) {
    auto s = std::make_unique<SuppressionStore>(Key{}, dir, std::move(opts));
    if (!s->open_dir(err) || !s->replay(err)) return nullptr;
    if (s->opts_.background) {
        s->bg_compact_ = true;  // the journal left by the last run may be due already
        s->bg_ = std::thread([p = s.get()] { p->maintenance(); });
    }
    return s;
}

bool SuppressionStore::open_dir(std::string& err) {
    std::error_code ec;
    bool created = std::filesystem::create_directories(dir_, ec);
    if (ec) {
        err = fmt::format("{}: {}", dir_, ec.message());
        return false;
    }
    if (created) {  // a new directory's own entry must be durable too
        fs_path self = fs_path(dir_).lexically_normal();
        if (!self.has_filename()) self = self.parent_path();  // "a/b/" -> "a/b"
        fs_path parent = self.parent_path();
        Fd p(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (p.get() >= 0) ::fsync(p.get());
    }
    dir_fd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    lock_fd_.reset(::open((dir_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
    if (dir_fd_.get() < 0 || lock_fd_.get() < 0) {
        err = fmt::format("{}: {}", dir_, std::strerror(errno));
        return false;
    }
    if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        err = fmt::format("{}: in use by another process ({})", dir_, std::strerror(errno));
        return false;
    }
    ::unlink((path_ + ".compact").c_str());  // left by a compaction a crash interrupted
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
    if (fd_.get() < 0) {
        err = fmt::format("{}: {}", path_, std::strerror(errno));
        return false;
    }
    return true;
}

// Rebuilds the table from the journal, and leaves the file ending at its last good record.
bool SuppressionStore::replay(std::string& err) {
    auto t0 = std::chrono::steady_clock::now();
    JournalScan scan;
    auto fn = [this](const JournalRecord& r) {
        if (r.op == JournalOp::add)
            table_.upsert(r.entry, r.at);
        else
            table_.erase(r.entry.scope, r.entry.address);
    };
    if (!scan_journal(fd_.get(), path_, fn, scan, err)) return false;
    uint64_t end = scan.end;
    if (scan.fresh) {
        if (scan.file_size > 0)
            log::warn("suppression: {}: {} bytes, shorter than a header: starting empty", path_,
                      scan.file_size);
        std::string h = journal_header();
        if (::ftruncate(fd_.get(), 0) != 0 || !pwrite_all(fd_.get(), h, 0) ||
            ::fdatasync(fd_.get()) != 0 || ::fsync(dir_fd_.get()) != 0) {
            err = fmt::format("{}: {}", path_, std::strerror(errno));
            return false;
        }
        end = h.size();
    } else if (scan.torn) {
        log::warn(
            "suppression: {}: dropping a torn tail of {} bytes at byte offset {} (a write "
            "that a crash interrupted, never acknowledged)",
            path_, scan.file_size - scan.end, scan.end);
        if (::ftruncate(fd_.get(), off_t(scan.end)) != 0 || ::fdatasync(fd_.get()) != 0) {
            err = fmt::format("{}: truncating the torn tail: {}", path_, std::strerror(errno));
            return false;
        }
    }
    file_end_ = applied_end_ = end;
    journal_records_ = applied_records_ = scan.records;
    int64_t next = 0;
    table_.drop_expired(0, table_.records(), horizon(), next);
    table_.set_next_expiry(next);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    log::info("suppression: {} entries from {} ({} records, {} bytes) in {} ms", table_.size(),
              path_, scan.records, end, ms);
    return true;
}

bool SuppressionStore::refuse_if_broken(std::string& err) const {
    if (!broken_) return false;
    err = fmt::format(
        "{}: an earlier write or fdatasync failed ({}); changes are refused until the store "
        "is opened again",
        path_, std::strerror(broken_));
    return true;
}

bool SuppressionStore::add(const std::vector<Entry>& entries, std::string& err) {
    std::vector<JournalRecord> changes(entries.size());
    int64_t now = now_s();
    for (size_t i = 0; i < entries.size(); ++i) {
        JournalRecord& c = changes[i];
        c.entry = entries[i];
        if (c.entry.created == 0) c.entry.created = now;
        std::string why;
        if (!validate_entry(c.entry, why)) {
            err = fmt::format("entry {} ('{}'): {}", i + 1, entries[i].address, why);
            return false;
        }
    }
    if (before_write_ && !before_write_(changes, err)) return false;
    return commit_in_slices(std::move(changes), "entries", err);
}

bool SuppressionStore::remove(const std::string& scope, const std::vector<std::string>& addresses,
                              std::string& err) {
    if (!valid_scope(scope, err)) return false;
    std::vector<JournalRecord> changes(addresses.size());
    for (size_t i = 0; i < addresses.size(); ++i) {
        JournalRecord& c = changes[i];
        c.op = JournalOp::remove;
        c.entry.scope = scope;
        c.entry.address = normalize_address(addresses[i]);
        std::string why;
        if (!valid_address(c.entry.address, why)) {
            err = fmt::format("address {} ('{}'): {}", i + 1, addresses[i], why);
            return false;
        }
    }
    if (before_write_ && !before_write_(changes, err)) return false;
    return commit_in_slices(std::move(changes), "removals", err);
}

bool SuppressionStore::apply_replicated(std::vector<JournalRecord> changes, std::string& err) {
    for (size_t i = 0; i < changes.size(); ++i) {
        auto& c = changes[i];
        std::string why;
        if (c.op == JournalOp::add && c.entry.created == 0) c.entry.created = now_s();
        if (c.op == JournalOp::remove) c.entry.address = normalize_address(c.entry.address);
        bool ok = c.op == JournalOp::add
                      ? validate_entry(c.entry, why)
                      : valid_scope(c.entry.scope, why) && valid_address(c.entry.address, why);
        if (!ok) {
            err = fmt::format("change {} ('{}'): {}", i + 1, c.entry.address, why);
            return false;
        }
    }
    return commit_in_slices(std::move(changes), "changes", err);
}

// Large batches go to the journal commit_slice records at a time; a failure part way says
// how many were stored before it.
bool SuppressionStore::commit_in_slices(std::vector<JournalRecord> changes, const char* what,
                                        std::string& err) {
    for (size_t done = 0; done < changes.size(); done += commit_slice) {
        size_t n = std::min(commit_slice, changes.size() - done);
        std::vector<JournalRecord> slice(std::make_move_iterator(changes.begin() + long(done)),
                                         std::make_move_iterator(changes.begin() + long(done + n)));
        if (!commit(std::move(slice), err)) {
            if (done)
                err = fmt::format("{} of {} {} stored, then: {}", done, changes.size(), what, err);
            return false;
        }
    }
    return true;
}

// Appends one slice to the journal and waits until a sync covers it (leading one if none
// is running).
bool SuppressionStore::commit(std::vector<JournalRecord> changes, std::string& err) {
    if (changes.empty()) return true;
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !swapping_; });
    if (refuse_if_broken(err)) return false;
    int64_t at = now_s();
    std::string bytes;
    for (auto& c : changes) {
        c.at = at;
        append_record(bytes, c);
    }
    if (!pwrite_all(fd_.get(), bytes, file_end_)) {
        int e = errno;
        // A partial write must not stay behind the next one: replay would apply it.
        if (::ftruncate(fd_.get(), off_t(file_end_)) != 0) broken_ = errno;
        err = fmt::format("{}: write: {}", path_, std::strerror(e));
        return false;
    }
    file_end_ += bytes.size();
    journal_records_ += changes.size();
    ++commits_;
    uint64_t mine = ++written_seq_;
    queued_.push_back(Batch{mine, file_end_, journal_records_, std::move(changes)});
    while (durable_seq_ < mine) {
        if (refuse_if_broken(err)) return false;
        if (!syncing_ && !swapping_)
            lead_sync(lk);
        else
            cv_.wait(lk);
    }
    return true;
}

// The leader: one fdatasync for everything written so far, then those changes go into the
// table in journal order, then every writer they belong to is released.
void SuppressionStore::lead_sync(std::unique_lock<std::mutex>& lk) {
    syncing_ = true;
    std::vector<Batch> batches;
    batches.swap(queued_);
    int fd = fd_.get();
    lk.unlock();
    if (opts_.before_sync) opts_.before_sync();
    int rc = ::fdatasync(fd);
    int e = rc == 0 ? 0 : errno;
    if (rc == 0) apply(batches);
    lk.lock();
    ++syncs_;
    syncing_ = false;
    if (rc != 0) {
        broken_ = e;
        log::error("suppression: fdatasync of {} failed: {}; refusing changes", path_,
                   std::strerror(e));
    } else {
        const Batch& last = batches.back();
        durable_seq_ = last.seq;
        applied_end_ = last.end;
        applied_records_ = last.records;
    }
    cv_.notify_all();
    if (rc == 0 && compaction_due()) wake_maintenance();
}

void SuppressionStore::apply(const std::vector<Batch>& batches) {
    std::lock_guard one(apply_mu_);
    size_t adds = 0;
    for (const auto& b : batches)
        for (const auto& c : b.changes) adds += c.op == JournalOp::add;
    if (table_.needs_growth(adds)) {  // build the bigger slot array while lookups go on
        SuppressionTable::Slots s;
        {
            std::shared_lock r(table_mu_);
            s = table_.grown(adds);
        }
        std::unique_lock w(table_mu_);
        table_.install(std::move(s));
    }
    size_t n = 0;
    std::unique_lock w(table_mu_);
    for (const auto& b : batches) {
        for (const auto& c : b.changes) {
            if (c.op == JournalOp::add)
                table_.upsert(c.entry, c.at);
            else
                table_.erase(c.entry.scope, c.entry.address);
            if (++n % apply_slice == 0) {  // let lookups in
                w.unlock();
                w.lock();
            }
        }
    }
}

std::optional<SuppressionEntry> SuppressionStore::find(std::string_view scope,
                                                       std::string_view address,
                                                       int64_t now) const {
    AddressBuf buf;
    auto a = normalize_into(buf, address);
    if (!a) return std::nullopt;
    std::shared_lock r(table_mu_);
    auto sid = table_.scope_id(scope);
    if (!sid) return std::nullopt;
    auto rec = table_.find(*sid, *a);
    if (!rec || table_.expired(*rec, now)) return std::nullopt;
    return table_.entry(*rec);
}

std::optional<SuppressionEntry> SuppressionStore::check(std::string_view address,
                                                        std::span<const std::string_view> scopes,
                                                        int64_t now) const {
    AddressBuf buf;
    auto a = normalize_into(buf, address);
    if (!a) return std::nullopt;
    std::shared_lock r(table_mu_);
    auto key = table_.key(*a);
    if (!key) return std::nullopt;  // its domain is on no entry
    auto in_force = [&](std::string_view scope) -> std::optional<uint32_t> {
        auto sid = table_.scope_id(scope);
        if (!sid) return std::nullopt;
        key->scope = *sid;
        auto rec = table_.find(*key);
        if (!rec || table_.expired(*rec, now)) return std::nullopt;
        return rec;
    };
    if (auto rec = in_force("")) return table_.entry(*rec);
    for (std::string_view s : scopes)
        if (auto rec = in_force(s)) return table_.entry(*rec);
    return std::nullopt;
}

std::optional<SuppressionEntry> SuppressionStore::check(std::string_view address,
                                                        const std::vector<std::string>& scopes,
                                                        int64_t now) const {
    constexpr size_t on_stack = 8;
    if (scopes.size() > on_stack) {
        std::vector<std::string_view> views(scopes.begin(), scopes.end());
        return check(address, std::span<const std::string_view>(views), now);
    }
    std::array<std::string_view, on_stack> views;
    std::copy(scopes.begin(), scopes.end(), views.begin());
    return check(address, std::span<const std::string_view>(views.data(), scopes.size()), now);
}

SuppressionPage SuppressionStore::list(const SuppressionQuery& q) const {
    SuppressionPage page;
    size_t limit = std::max<size_t>(q.limit, 1);
    constexpr uint64_t budget = 1 << 20;
    uint64_t i = q.after, scanned = 0;
    for (;;) {
        std::shared_lock r(table_mu_);
        std::optional<uint32_t> sid;
        if (q.scope && !(sid = table_.scope_id(*q.scope))) return page;
        uint64_t n = table_.records();
        for (uint64_t stop = std::min<uint64_t>(n, i + scan_slice); i < stop; ++i, ++scanned) {
            uint32_t k = uint32_t(i);
            if (!table_.live(k) || (sid && table_.scope_of(k) != *sid) ||
                (q.reason && table_.reason(k) != *q.reason) || (q.now && table_.expired(k, q.now)))
                continue;
            page.entries.push_back(table_.entry(k));
            if (page.entries.size() == limit) {
                page.next = i + 1;
                return page;
            }
        }
        if (i >= n) return page;
        if (scanned >= budget) {
            page.next = i;
            return page;
        }
    }
}

size_t SuppressionStore::size() const {
    std::shared_lock r(table_mu_);
    return table_.size();
}

uint64_t SuppressionStore::count(SuppressionReason reason) const {
    std::shared_lock r(table_mu_);
    return table_.count(reason);
}

SuppressionStats SuppressionStore::stats() const {
    SuppressionStats s;
    {
        std::lock_guard lk(mu_);
        s.journal_records = journal_records_;
        s.journal_bytes = file_end_;
        s.commits = commits_;
        s.syncs = syncs_;
        s.compactions = compactions_;
    }
    std::shared_lock r(table_mu_);
    s.entries = table_.size();
    s.memory_bytes = table_.memory_bytes();
    return s;
}

// A time no record still to be applied was written before (see "Expiry" in the header):
// entries expired by then can go without changing any later decision.
int64_t SuppressionStore::horizon() const {
    return now_s() - opts_.expiry_grace_s;
}

size_t SuppressionStore::sweep_expired() {
    std::lock_guard m(maint_mu_);
    return sweep_at(horizon());
}

size_t SuppressionStore::sweep_at(int64_t horizon) {
    std::lock_guard one(apply_mu_);
    {
        std::shared_lock r(table_mu_);
        int64_t next = table_.next_expiry();
        if (next == 0 || next > horizon) return 0;
    }
    size_t dropped = 0;
    int64_t next = 0;
    for (uint32_t i = 0;; i += scan_slice) {
        std::unique_lock w(table_mu_);
        if (i >= table_.records()) {
            table_.set_next_expiry(next);
            break;
        }
        dropped +=
            table_.drop_expired(i, i + std::min(scan_slice, table_.records() - i), horizon, next);
    }
    if (dropped) log::debug("suppression: {} expired entries dropped from memory", dropped);
    return dropped;
}

bool SuppressionStore::compaction_due() {  // mu_ held
    if (journal_records_ <= opts_.compact_min_records) return false;
    if (compact_failed_at_ && now_s() - compact_failed_at_ < 60) return false;
    std::shared_lock r(table_mu_);
    return journal_records_ > 2 * uint64_t(table_.size());
}

void SuppressionStore::wake_maintenance() {
    {
        std::lock_guard lk(bg_mu_);
        bg_compact_ = true;
    }
    bg_cv_.notify_one();
}

void SuppressionStore::maintenance() {
    pthread_setname_np(pthread_self(), "kasi-suppress");
    int64_t last_sweep = now_s();
    std::unique_lock lk(bg_mu_);
    while (!bg_stop_) {
        bg_cv_.wait_for(lk, std::chrono::seconds(1), [&] { return bg_stop_ || bg_compact_; });
        if (bg_stop_) break;
        bool wanted = bg_compact_;
        bg_compact_ = false;
        lk.unlock();
        bool due = false;
        if (wanted) {
            std::lock_guard m(mu_);
            due = compaction_due();
        }
        std::string err;
        if (due && !compact(err)) {
            log::error("suppression: compaction failed (retrying in a minute): {}", err);
            std::lock_guard m(mu_);
            compact_failed_at_ = now_s();
        }
        if (now_s() - last_sweep >= opts_.sweep_interval_s) {
            sweep_expired();
            last_sweep = now_s();
        }
        lk.lock();
    }
}

}  // namespace kasi
