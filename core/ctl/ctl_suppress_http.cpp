#include "core/ctl/ctl_suppress_http.h"

#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include "core/ctl/ctl_http.h"
#include "core/http/json_parse.h"
#include "core/suppression/suppression_csv.h"

namespace kasi {

namespace {

constexpr size_t max_piece = 8 << 20;

struct Totals {
    size_t sent = 0, imported = 0, skipped_by_kasi = 0;
};

// Posts one piece (the header and some rows); false with a message printed.
bool post_piece(const CtlHttpTarget& t, const std::string& piece, Totals& tot) {
    CtlHttpReply r;
    std::string err;
    if (!ctl_http_request(t.addr, "POST", "/api/v1/admin/suppressions/import", "text/csv", piece, r,
                          err)) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return false;
    }
    if (r.status != 200) {
        std::fprintf(stderr, "kasictl: kasi answered %d: %s\n", r.status,
                     ctl_http_error_text(r).c_str());
        return false;
    }
    rapidjson::Document d;
    if (!parse_json(d, r.body, JsonLimits{}, err) || !d.IsObject() || !d.HasMember("imported") ||
        !d["imported"].IsUint64()) {
        std::fprintf(stderr, "kasictl: an answer that is not an import result: %s\n",
                     r.body.c_str());
        return false;
    }
    tot.imported += d["imported"].GetUint64();
    if (d.HasMember("skipped") && d["skipped"].IsUint64() && d["skipped"].GetUint64() > 0) {
        // Rows this reader took and kasi's did not: versions that disagree. Say so.
        tot.skipped_by_kasi += d["skipped"].GetUint64();
        if (d.HasMember("problems") && d["problems"].IsArray())
            for (const auto& p : d["problems"].GetArray())
                if (p.IsObject() && p.HasMember("message") && p["message"].IsString())
                    std::fprintf(stderr, "kasictl: kasi skipped a row: %s\n",
                                 p["message"].GetString());
    }
    return true;
}

int import_csv(const CtlHttpTarget& t, const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "kasictl: cannot open %s\n", file.c_str());
        return 1;
    }
    size_t limit = std::min(max_piece, t.max_body_bytes / 2);
    std::string piece(suppression_csv_header);
    Totals tot;
    size_t problems = 0;
    bool failed = false;
    auto flush = [&] {
        if (failed || piece.size() == suppression_csv_header.size()) return;
        if (!post_piece(t, piece, tot)) failed = true;
        piece.assign(suppression_csv_header);
    };
    SuppressionCsvReader reader(
        [&](SuppressionEntry&& e) {
            std::string row = suppression_csv_row(e);
            if (piece.size() + row.size() > limit) flush();
            piece += row;
            ++tot.sent;
        },
        [&](CsvProblem&& p) {
            ++problems;
            std::fprintf(stderr, "%s:%zu: %s\n", file.c_str(), p.line, p.message.c_str());
        });
    std::string buf(1 << 20, '\0');
    while (!failed && (in.read(buf.data(), std::streamsize(buf.size())) || in.gcount() > 0))
        reader.feed(std::string_view(buf.data(), size_t(in.gcount())));
    if (!failed) reader.finish();
    flush();
    if (failed) {
        std::fprintf(stderr, "kasictl: stopped: %zu entries were imported before (they stay)\n",
                     tot.imported);
        return 1;
    }
    std::printf("imported %zu of %zu rows into the running kasi (%zu problems)\n", tot.imported,
                reader.rows(), problems + tot.skipped_by_kasi);
    return problems + tot.skipped_by_kasi ? 1 : 0;
}

int export_csv(const CtlHttpTarget& t, const std::string& file) {
    FILE* out = stdout;
    if (!file.empty() && !(out = std::fopen(file.c_str(), "wb"))) {
        std::fprintf(stderr, "kasictl: cannot write %s\n", file.c_str());
        return 1;
    }
    bool ok = std::fwrite(suppression_csv_header.data(), 1, suppression_csv_header.size(), out) ==
              suppression_csv_header.size();
    size_t n = 0;
    uint64_t after = 0;
    do {
        CtlHttpReply r;
        std::string err;
        std::string path =
            fmt::format("/api/v1/admin/suppressions/export?limit=100000&after={}", after);
        if (!ctl_http_request(t.addr, "GET", path, "text/plain", "", r, err)) {
            std::fprintf(stderr, "kasictl: %s\n", err.c_str());
            ok = false;
            break;
        }
        const std::string* next = r.header("kasi-next");
        if (r.status != 200 || !next) {
            std::fprintf(stderr, "kasictl: kasi answered %d: %s\n", r.status,
                         ctl_http_error_text(r).c_str());
            ok = false;
            break;
        }
        // Every page starts with the header line: written once, above.
        size_t body = r.body.find('\n');
        body = body == std::string::npos ? r.body.size() : body + 1;
        ok = ok && std::fwrite(r.body.data() + body, 1, r.body.size() - body, out) ==
                       r.body.size() - body;
        if (const std::string* c = r.header("kasi-count"))
            n += std::strtoull(c->c_str(), nullptr, 10);
        after = std::strtoull(next->c_str(), nullptr, 10);
    } while (ok && after != 0);
    if (out != stdout && std::fclose(out) != 0) ok = false;
    if (out == stdout) std::fflush(stdout);
    if (!ok) {
        std::fprintf(stderr, "kasictl: the export %s is incomplete\n",
                     file.empty() ? "on stdout" : file.c_str());
        return 1;
    }
    std::fprintf(file.empty() ? stderr : stdout, "exported %zu entries to %s\n", n,
                 file.empty() ? "stdout" : file.c_str());
    return 0;
}

}  // namespace

std::optional<int> ctl_suppress_http(const std::string& dir, const std::vector<std::string>& args) {
    bool import = args.size() == 2 && args[0] == "import";
    bool exp = (args.size() == 1 || args.size() == 2) && args[0] == "export";
    if (!import && !exp) return std::nullopt;
    auto t = ctl_http_target(dir);
    if (!t) return std::nullopt;
    // Is kasi there? A refused connection means it is stopped: the list is the caller's.
    CtlHttpReply r;
    std::string err;
    bool refused = false;
    if (!ctl_http_request(t->addr, "GET", "/health", "text/plain", "", r, err, &refused)) {
        if (refused) return std::nullopt;
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    return import ? import_csv(*t, args[1]) : export_csv(*t, args.size() == 2 ? args[1] : "");
}

}  // namespace kasi
