#include "core/reputation/reputation_snapshot.h"

#include <fmt/format.h>

#include <limits>
#include <vector>

#include "core/util/strings.h"

namespace kasi {

namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> parts;
    size_t at = 0;
    while (true) {
        size_t tab = line.find('\t', at);
        parts.push_back(line.substr(at, tab == std::string_view::npos ? tab : tab - at));
        if (tab == std::string_view::npos) return parts;
        at = tab + 1;
    }
}

bool parse_i64(std::string_view s, int64_t& out) {
    bool neg = !s.empty() && s[0] == '-';
    unsigned long long v = 0;
    if (!parse_u64(neg ? s.substr(1) : s, v) || v > uint64_t(std::numeric_limits<int64_t>::max()))
        return false;
    out = neg ? -int64_t(v) : int64_t(v);
    return true;
}

// "key:count,key:count"
bool parse_counts(std::string_view s, std::vector<std::pair<uint16_t, uint32_t>>& out) {
    out.clear();
    while (!s.empty()) {
        size_t comma = s.find(',');
        std::string_view item = s.substr(0, comma);
        s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
        size_t colon = item.find(':');
        unsigned long long k = 0, n = 0;
        if (colon == std::string_view::npos || !parse_u64(item.substr(0, colon), k) ||
            !parse_u64(item.substr(colon + 1), n) || k > 0xffff || n > 0xffffffffull)
            return false;
        out.push_back({uint16_t(k), uint32_t(n)});
        if (comma != std::string_view::npos && s.empty()) return false;  // a trailing comma
    }
    return !out.empty();
}

bool parse_header(std::string_view line) {
    constexpr std::string_view magic = "kasi-reputation 1 ";
    return line.substr(0, magic.size()) == magic;
}

}  // namespace

std::string write_reputation_snapshot(const ReputationMatrix& m) {
    std::string out =
        fmt::format("kasi-reputation 1 {} {}\n", m.bucket_seconds(), m.bucket_count());
    m.visit([&out](const RepKey& k, const ReputationWindow& w) {
        if (w.buckets().empty()) return;
        out += fmt::format("c\t{}\t{}\t{}\t{}\n", escape_token(k.source), escape_token(k.domain),
                           escape_token(k.provider), escape_token(k.tenant));
        for (const auto& b : w.buckets()) {
            if (b.counts.empty()) continue;
            out += fmt::format("b\t{}\t", b.start);
            for (size_t i = 0; i < b.counts.size(); ++i)
                out += fmt::format("{}{}:{}", i ? "," : "", b.counts[i].first, b.counts[i].second);
            out += '\n';
        }
    });
    return out;
}

bool read_reputation_snapshot(std::string_view text, ReputationMatrix& m, int64_t now,
                              SnapshotRead& stats, std::string& err) {
    size_t nl = text.find('\n');
    if (!parse_header(text.substr(0, nl))) {
        err = "not a reputation snapshot (the first line is not 'kasi-reputation 1 ...')";
        return false;
    }
    const int64_t bs = m.bucket_seconds(), span = bs * m.bucket_count();
    std::optional<RepKey> cell;
    std::vector<std::pair<uint16_t, uint32_t>> counts;
    size_t lineno = 1;
    auto bad = [&stats, &lineno] {
        ++stats.bad_lines;
        if (!stats.first_bad_line) stats.first_bad_line = lineno;
    };
    while (nl != std::string_view::npos) {
        text = text.substr(nl + 1);
        nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        ++lineno;
        if (line.empty()) continue;
        auto f = split_tabs(line);
        if (f[0] == "c" && f.size() == 5) {
            RepKey k;
            if (unescape_token(f[1], k.source) && unescape_token(f[2], k.domain) &&
                unescape_token(f[3], k.provider) && unescape_token(f[4], k.tenant)) {
                cell = std::move(k);
                ++stats.cells;
                continue;
            }
            cell.reset();  // its buckets must not land in the cell before
        } else if (f[0] == "b" && f.size() == 3 && cell) {
            int64_t start = 0;
            if (parse_i64(f[1], start) && parse_counts(f[2], counts)) {
                // kept when the window at `now` still covers its bucket (as the window reads
                // it: by the bucket's start) and it is not from the far future
                if (rep_bucket_start(start, uint32_t(bs)) >
                        rep_bucket_start(now, uint32_t(bs)) - span &&
                    start <= now + span) {
                    m.restore(*cell, start, counts);
                    ++stats.buckets;
                }
                continue;
            }
        }
        bad();
    }
    return true;
}

}  // namespace kasi
