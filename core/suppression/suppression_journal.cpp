#include "core/suppression/suppression_journal.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "core/util/crc32c.h"

namespace kasi {

namespace {

constexpr char magic[8] = {'K', 'S', 'U', 'P', 'J', 'R', 'N', 'L'};

template <class T>
void put(std::string& out, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) out += char(uint64_t(v) >> (8 * i));
}

template <class T>
T get_le(const char* p) {
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
    return T(v);
}

// Reads fields off a payload, remembering whether it ran short.
struct Cursor {
    std::string_view s;
    bool ok = true;
    template <class T>
    T num() {
        if (s.size() < sizeof(T)) return ok = false, T{};
        T v = get_le<T>(s.data());
        s.remove_prefix(sizeof(T));
        return v;
    }
    std::string_view bytes(size_t n) {
        if (s.size() < n) return ok = false, std::string_view();
        std::string_view v = s.substr(0, n);
        s.remove_prefix(n);
        return v;
    }
};

uint32_t record_crc(const char* len4, std::string_view payload) {
    return crc32c(crc32c(0, len4, 4), payload.data(), payload.size());
}

// Buffered reads of [off, off + n) from a file, for a forward scan.
class Reader {
  public:
    Reader(int fd, uint64_t size) : fd_(fd), size_(size) {}
    // The bytes, or nothing when they run past the end of the file (or a read fails).
    std::optional<std::string_view> get(uint64_t off, size_t n) {
        if (off + n > size_) return std::nullopt;
        if (off < buf_off_ || off + n > buf_off_ + buf_.size()) {
            if (!fill(off, std::max(n, window))) return std::nullopt;
        }
        return std::string_view(buf_).substr(off - buf_off_, n);
    }
    uint64_t size() const { return size_; }

  private:
    static constexpr size_t window = 4 << 20;
    bool fill(uint64_t off, size_t want) {
        want = size_t(std::min<uint64_t>(want, size_ - off));
        buf_.resize(want);
        size_t got = 0;
        while (got < want) {
            ssize_t r = ::pread(fd_, buf_.data() + got, want - got, off_t(off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return buf_.clear(), false;
            got += size_t(r);
        }
        buf_off_ = off;
        return true;
    }
    int fd_;
    uint64_t size_;
    std::string buf_;
    uint64_t buf_off_ = 0;
};

enum class Check { good, bad, undecodable };

// Whether a good record starts at `off`; its total size in `size`.
Check check_at(Reader& r, uint64_t off, JournalRecord& rec, size_t& size, std::string& why) {
    auto pre = r.get(off, journal_prefix_size);
    if (!pre) return why = "a record header cut short by the end of the file", Check::bad;
    uint32_t len = get_le<uint32_t>(pre->data());
    if (len == 0 || len > journal_max_payload)
        return why = fmt::format("an impossible record length {}", len), Check::bad;
    auto whole = r.get(off, journal_prefix_size + len);
    if (!whole) return why = "a record cut short by the end of the file", Check::bad;
    std::string_view payload = whole->substr(journal_prefix_size);
    if (record_crc(whole->data(), payload) != get_le<uint32_t>(whole->data() + 4))
        return why = "a checksum mismatch", Check::bad;
    size = journal_prefix_size + len;
    return decode_record(payload, rec, why) ? Check::good : Check::undecodable;
}

// The offset of the next good record after `from`, if any.
std::optional<uint64_t> next_good(Reader& r, uint64_t from) {
    JournalRecord rec;
    std::string why;
    size_t size = 0;
    for (uint64_t p = from; p + journal_prefix_size <= r.size(); ++p)
        if (check_at(r, p, rec, size, why) == Check::good) return p;
    return std::nullopt;
}

bool check_header(Reader& r, const std::string& path, std::string& err) {
    auto h = r.get(0, journal_header_size);
    if (!h || std::memcmp(h->data(), magic, sizeof magic) != 0) {
        err = fmt::format("{}: not a Kasi suppression journal (bad magic)", path);
        return false;
    }
    if (get_le<uint32_t>(h->data() + 12) != crc32c(0, h->data(), 12)) {
        err = fmt::format("{}: header checksum mismatch", path);
        return false;
    }
    uint16_t v = get_le<uint16_t>(h->data() + 8);
    if (v != journal_version) {
        err = fmt::format("{}: format version {} (this Kasi reads version {})", path, v,
                          journal_version);
        return false;
    }
    return true;
}

}  // namespace

std::string journal_header() {
    std::string h(magic, sizeof magic);
    put<uint16_t>(h, journal_version);
    put<uint16_t>(h, 0);
    put<uint32_t>(h, crc32c(0, h.data(), h.size()));
    return h;
}

void append_record(std::string& out, const JournalRecord& r) {
    const SuppressionEntry& e = r.entry;
    size_t start = out.size();
    out.append(journal_prefix_size, '\0');
    put<uint8_t>(out, uint8_t(r.op));
    if (r.op == JournalOp::add) put<uint8_t>(out, uint8_t(e.reason));
    put<uint64_t>(out, uint64_t(r.at));
    if (r.op == JournalOp::add) {
        put<uint64_t>(out, uint64_t(e.created));
        put<uint64_t>(out, uint64_t(e.expires));
    }
    put<uint8_t>(out, uint8_t(e.scope.size()));
    out += e.scope;
    put<uint16_t>(out, uint16_t(e.address.size()));
    out += e.address;
    if (r.op == JournalOp::add) {
        put<uint8_t>(out, uint8_t(e.event.size()));
        out += e.event;
    }
    uint32_t len = uint32_t(out.size() - start - journal_prefix_size);
    char* p = out.data() + start;
    for (int i = 0; i < 4; ++i) p[i] = char(len >> (8 * i));
    uint32_t crc = record_crc(p, std::string_view(p + journal_prefix_size, len));
    for (int i = 0; i < 4; ++i) p[4 + i] = char(crc >> (8 * i));
}

bool decode_record(std::string_view payload, JournalRecord& r, std::string& err) {
    Cursor c{payload};
    uint8_t op = c.num<uint8_t>();
    if (op != uint8_t(JournalOp::add) && op != uint8_t(JournalOp::remove)) {
        err = fmt::format("unknown record type {} (written by a newer Kasi?)", op);
        return false;
    }
    // Fields are assigned, not rebuilt: a replay decodes millions of records into one
    // JournalRecord, and its strings keep their capacity.
    r.op = JournalOp(op);
    SuppressionEntry& e = r.entry;
    bool add = r.op == JournalOp::add;
    e.reason = add ? SuppressionReason(c.num<uint8_t>()) : SuppressionReason::manual;
    r.at = int64_t(c.num<uint64_t>());
    e.created = add ? int64_t(c.num<uint64_t>()) : 0;
    e.expires = add ? int64_t(c.num<uint64_t>()) : 0;
    e.scope.assign(c.bytes(c.num<uint8_t>()));
    e.address.assign(c.bytes(c.num<uint16_t>()));
    e.event.assign(add ? c.bytes(c.num<uint8_t>()) : std::string_view());
    if (!c.ok || !c.s.empty()) {
        err = "a record whose fields do not add up to its length";
        return false;
    }
    return validate_stored_entry(e, err);
}

bool scan_journal(int fd, const std::string& path,
                  const std::function<void(const JournalRecord&)>& fn, JournalScan& out,
                  std::string& err) {
    out = JournalScan{};
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        return false;
    }
    out.file_size = uint64_t(size);
    if (out.file_size < journal_header_size) {
        out.fresh = true;
        return true;
    }
    Reader r(fd, out.file_size);
    if (!check_header(r, path, err)) return false;
    uint64_t off = journal_header_size;
    JournalRecord rec;
    std::string why;
    while (off < out.file_size) {
        size_t size_of = 0;
        Check c = check_at(r, off, rec, size_of, why);
        if (c == Check::undecodable) {
            err = fmt::format("{}: record at byte offset {}: {}", path, off, why);
            return false;
        }
        if (c == Check::bad) {
            if (auto next = next_good(r, off + 1)) {
                err = fmt::format(
                    "{}: corrupt record at byte offset {} ({}), and a valid record follows "
                    "at byte offset {}: damage in the middle of the journal",
                    path, off, why, *next);
                return false;
            }
            out.torn = true;
            break;
        }
        fn(rec);
        ++out.records;
        off += size_of;
    }
    out.end = off;
    return true;
}

bool pwrite_all(int fd, std::string_view data, uint64_t offset) {
    while (!data.empty()) {
        ssize_t w = ::pwrite(fd, data.data(), data.size(), off_t(offset));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return false;
        if (w == 0) return errno = ENOSPC, false;
        data.remove_prefix(size_t(w));
        offset += uint64_t(w);
    }
    return true;
}

}  // namespace kasi
