// CSV import and export of suppression entries: how lists move between Kasi and the rest of
// the world (a previous provider's export, a spreadsheet, another Kasi node).
//
// Format (RFC 4180): a header line `address,scope,reason,created,expires,event`, then one
// entry per line. Times are unix seconds (expires 0 or empty = never); reason is one of the
// names of suppression_entry.h; scope empty = global.
//
// Import is tolerant, because these files come from everywhere:
//   - the header may be missing (the columns are then in the order above), or name the
//     columns in another order; only `address` is required, others default (scope global,
//     reason `import` or the caller's, created now, never expires, no event); unknown
//     columns are reported once and ignored;
//   - LF or CRLF line ends, a UTF-8 byte order mark, blank lines, spaces around fields;
//   - quoted fields ("a,b", "say ""x"""), which may span lines;
//   - a row that cannot be used (no address, a bad reason or time, too many fields, text
//     after a closing quote, an unterminated quote) is reported with the line it starts on
//     and skipped; the other rows import. Nothing in the input can make it throw or crash.
// The reader is incremental (feed() pieces of any size), so a 10-million-line file is
// never held in memory whole.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "core/suppression/suppression_entry.h"

namespace kasi {

class SuppressionStore;

struct CsvProblem {
    size_t line = 0;  // 1-based line on which the row starts
    std::string message;
};

class SuppressionCsvReader {
  public:
    using EntryFn = std::function<void(SuppressionEntry&&)>;
    using ProblemFn = std::function<void(CsvProblem&&)>;
    SuppressionCsvReader(EntryFn on_entry, ProblemFn on_problem,
                         SuppressionReason default_reason = SuppressionReason::import);

    void feed(std::string_view chunk);
    void finish();  // end of input: the last row (without a final newline) counts too
    size_t rows() const { return rows_; }  // data rows seen, good or bad

  private:
    enum class State { field_start, unquoted, quoted, quote_in_quoted, after_quote };
    void step(char c);
    void end_field();
    void end_row();
    void row_problem(std::string message);
    bool take_header();
    void convert_row();

    EntryFn on_entry_;
    ProblemFn on_problem_;
    SuppressionReason default_reason_;
    State state_ = State::field_start;
    std::string field_;
    bool field_quoted_ = false;
    std::vector<std::string> fields_;
    bool row_quoted_ = false;  // any field of the row was quoted (so it is not blank)
    std::string row_error_;
    size_t line_ = 1, row_line_ = 1;
    bool first_row_ = true, bom_checked_ = false;
    std::string pending_;       // the first bytes, until it is clear whether they are a BOM
    std::vector<int> columns_;  // field position -> column (-1 ignored)
    size_t rows_ = 0;
};

// Everything in `in`, added to `store` in batches. Counts what happened; problems are the
// rows skipped (at most max_problems kept). False only when the store refuses a batch.
struct CsvImportResult {
    size_t rows = 0, imported = 0;
    std::vector<CsvProblem> problems;
    size_t problem_count = 0;
};
bool import_suppression_csv(SuppressionStore& store, std::istream& in, CsvImportResult& result,
                            std::string& err, size_t max_problems = 1000);

// One CSV line (with "\r\n") for an entry, fields quoted where they need it.
std::string suppression_csv_row(const SuppressionEntry& e);
extern const std::string_view suppression_csv_header;  // with "\r\n"
// The header and every entry in force at `now`. Returns the number of entries written.
size_t export_suppression_csv(const SuppressionStore& store, std::ostream& out, int64_t now);

}  // namespace kasi
