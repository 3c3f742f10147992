// kasictl suppress import|export: the suppression list and a CSV file (docs/suppression.md),
// with the store opened by kasictl itself. One process owns a store (a lock file), so this
// works while kasi is stopped: to load a list before the first start, to move one between
// nodes, to back one up. While kasi runs, `suppress list` and `suppress add` go through it.
// With suppression.ini [postgres], an import also goes to the outbox (suppression_outbox.h),
// so kasi pushes it to PostgreSQL when it starts.
#include "core/ctl/ctl_suppress_file.h"

#include <cstdio>
#include <fstream>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/suppression/suppression_csv.h"
#include "core/suppression/suppression_outbox.h"
#include "core/suppression/suppression_policy.h"
#include "core/suppression/suppression_store.h"
#include "core/util/clock.h"

namespace kasi {

namespace {

// The store, and with [postgres] the outbox its changes go through (declared first, so that
// it outlives the store).
struct List {
    std::unique_ptr<SuppressionOutbox> outbox;
    std::unique_ptr<SuppressionStore> store;
};

// `writes`: the caller changes the list (an import), so the outbox is needed.
List open_store(const std::string& dir, bool writes, std::string& where) {
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    auto p = SuppressionPolicy::load(cfg, load_settings(cfg, dir, d).queue_dir, d);
    where = p->dir;
    std::string err;
    List l;
    l.store = SuppressionStore::open(p->dir, err);
    if (!l.store) {
        std::fprintf(stderr,
                     "kasictl: the suppression list in %s: %s (kasi holds it while it runs: stop "
                     "it, or use suppress add/list)\n",
                     p->dir.c_str(), err.c_str());
        return l;
    }
    if (p->pg_dsn.empty() || !writes) return l;
    l.outbox = SuppressionOutbox::open(p->dir, err);
    if (!l.outbox) {
        std::fprintf(stderr, "kasictl: the PostgreSQL outbox in %s: %s\n", p->dir.c_str(),
                     err.c_str());
        l.store.reset();
        return l;
    }
    auto* ob = l.outbox.get();
    l.store->set_before_write(
        [ob](const std::vector<JournalRecord>& c, std::string& e) { return ob->append(c, e); });
    return l;
}

int import_csv(const std::string& dir, const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "kasictl: cannot open %s\n", file.c_str());
        return 1;
    }
    std::string where;
    auto list = open_store(dir, true, where);
    if (!list.store) return 1;
    CsvImportResult r;
    std::string err;
    bool ok = import_suppression_csv(*list.store, in, r, err);
    for (const auto& p : r.problems)
        std::fprintf(stderr, "%s:%zu: %s\n", file.c_str(), p.line, p.message.c_str());
    if (!ok) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    std::printf("imported %zu of %zu rows into %s (%zu problems)\n", r.imported, r.rows,
                where.c_str(), r.problem_count);
    return r.problem_count ? 1 : 0;
}

int export_csv(const std::string& dir, const std::string& file) {
    std::string where;
    auto list = open_store(dir, false, where);
    if (!list.store) return 1;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) {
        std::fprintf(stderr, "kasictl: cannot write %s\n", file.c_str());
        return 1;
    }
    size_t n = export_suppression_csv(*list.store, out, now_ms() / 1000);
    out.flush();
    if (!out) {
        std::fprintf(stderr, "kasictl: writing %s failed\n", file.c_str());
        return 1;
    }
    std::printf("exported %zu entries to %s\n", n, file.c_str());
    return 0;
}

}  // namespace

std::optional<int> ctl_suppress_file(const std::string& dir, const std::vector<std::string>& args) {
    if (args.size() != 2 || (args[0] != "import" && args[0] != "export")) return std::nullopt;
    return args[0] == "import" ? import_csv(dir, args[1]) : export_csv(dir, args[1]);
}

}  // namespace kasi
