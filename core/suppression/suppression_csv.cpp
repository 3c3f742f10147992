#include "core/suppression/suppression_csv.h"

#include <array>
#include <istream>
#include <ostream>

#include <fmt/format.h>

#include "core/suppression/suppression_store.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

enum Column { col_address, col_scope, col_reason, col_created, col_expires, col_event };
constexpr std::array<std::string_view, 6> column_names = {"address", "scope",   "reason",
                                                          "created", "expires", "event"};
constexpr std::string_view bom = "\xEF\xBB\xBF";
constexpr size_t import_batch = 10000;

bool parse_time(std::string_view s, int64_t& out) {
    unsigned long long v = 0;
    if (!parse_u64(s, v) || v > uint64_t(suppression_max_time)) return false;
    out = int64_t(v);
    return true;
}

std::string quoted(std::string_view s) {
    bool needs = !s.empty() && (s.front() == ' ' || s.back() == ' ' ||
                                s.find_first_of(",\"\r\n") != std::string_view::npos);
    if (!needs) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + '"';
}

}  // namespace

const std::string_view suppression_csv_header = "address,scope,reason,created,expires,event\r\n";

SuppressionCsvReader::SuppressionCsvReader(EntryFn on_entry, ProblemFn on_problem,
                                           SuppressionReason default_reason)
    : on_entry_(std::move(on_entry)),
      on_problem_(std::move(on_problem)),
      default_reason_(default_reason) {}

void SuppressionCsvReader::feed(std::string_view chunk) {
    if (!bom_checked_) {  // the byte order mark may arrive split over chunks
        pending_ += chunk;
        if (pending_.size() < bom.size() && bom.substr(0, pending_.size()) == pending_) return;
        bom_checked_ = true;
        std::string all = std::move(pending_);
        pending_.clear();
        std::string_view rest = all;
        if (rest.substr(0, bom.size()) == bom) rest.remove_prefix(bom.size());
        feed(rest);
        return;
    }
    for (char c : chunk) step(c);
}

void SuppressionCsvReader::step(char c) {
    if (c == '\n' && state_ == State::quoted) {
        ++line_;
        field_ += c;
        return;
    }
    if (c == '\n') {
        end_field();
        end_row();
        ++line_;
        row_line_ = line_;
        return;
    }
    switch (state_) {
        case State::field_start:
            if (c == '"') {
                state_ = State::quoted;
                field_quoted_ = row_quoted_ = true;
            } else if (c == ',') {
                end_field();
            } else if (c != ' ' && c != '\t' && c != '\r') {
                field_ += c;
                state_ = State::unquoted;
            }
            break;
        case State::unquoted:
            if (c == ',')
                end_field();
            else if (c != '\r')
                field_ += c;
            break;
        case State::quoted:
            if (c == '"')
                state_ = State::quote_in_quoted;
            else
                field_ += c;
            break;
        case State::quote_in_quoted:
            if (c == '"') {
                field_ += c;
                state_ = State::quoted;
                break;
            }
            state_ = State::after_quote;
            [[fallthrough]];
        case State::after_quote:
            if (c == ',')
                end_field();
            else if (c != ' ' && c != '\t' && c != '\r' && row_error_.empty())
                row_error_ = "text after a closing quote";
            break;
    }
}

void SuppressionCsvReader::end_field() {
    if (!field_quoted_) field_ = std::string(trim(field_));
    fields_.push_back(std::move(field_));
    field_.clear();
    field_quoted_ = false;
    state_ = State::field_start;
}

void SuppressionCsvReader::end_row() {
    bool blank = fields_.size() == 1 && fields_[0].empty() && !row_quoted_;
    if (!blank) {
        if (!(first_row_ && take_header())) {
            ++rows_;
            if (!row_error_.empty())
                on_problem_({row_line_, row_error_});
            else
                convert_row();
        }
        first_row_ = false;
    }
    fields_.clear();
    row_error_.clear();
    row_quoted_ = false;
}

void SuppressionCsvReader::finish() {
    if (!bom_checked_) {
        bom_checked_ = true;
        std::string rest = std::move(pending_);
        pending_.clear();
        feed(rest);
    }
    if (state_ == State::quoted) row_error_ = "a quoted field is not closed";
    if (state_ != State::field_start || !fields_.empty() || !field_.empty()) {
        end_field();
        end_row();
    }
}

// A first row naming an `address` column is the header; it says where each column is.
bool SuppressionCsvReader::take_header() {
    columns_.clear();
    bool header = false;
    for (const auto& f : fields_) header |= iequals(f, "address");
    if (!header) {
        for (size_t i = 0; i < column_names.size(); ++i) columns_.push_back(int(i));
        return false;
    }
    for (const auto& f : fields_) {
        int col = -1;
        for (size_t i = 0; i < column_names.size(); ++i)
            if (iequals(f, column_names[i])) col = int(i);
        if (col < 0) on_problem_({row_line_, fmt::format("unknown column '{}' ignored", f)});
        columns_.push_back(col);
    }
    return true;
}

void SuppressionCsvReader::convert_row() {
    if (fields_.size() > columns_.size()) {
        on_problem_({row_line_, fmt::format("{} fields, at most {} expected", fields_.size(),
                                            columns_.size())});
        return;
    }
    SuppressionEntry e;
    e.reason = default_reason_;
    for (size_t i = 0; i < fields_.size(); ++i) {
        const std::string& f = fields_[i];
        std::string problem;
        switch (columns_[i]) {
            case col_address:
                e.address = f;
                break;
            case col_scope:
                e.scope = f;
                break;
            case col_event:
                e.event = f;
                break;
            case col_reason:
                if (f.empty()) break;
                if (auto r = parse_reason(f))
                    e.reason = *r;
                else
                    problem = fmt::format("unknown reason '{}'", f);
                break;
            case col_created:
            case col_expires:
                if (!f.empty() &&
                    !parse_time(f, columns_[i] == col_created ? e.created : e.expires))
                    problem = fmt::format("{} '{}' is not unix seconds",
                                          column_names[size_t(columns_[i])], f);
                break;
            default:
                break;
        }
        if (!problem.empty()) return on_problem_({row_line_, std::move(problem)});
    }
    std::string why;
    if (e.address.empty()) return on_problem_({row_line_, "no address"});
    if (!validate_entry(e, why)) return on_problem_({row_line_, why});
    on_entry_(std::move(e));
}

bool import_suppression_csv(SuppressionStore& store, std::istream& in, CsvImportResult& result,
                            std::string& err, size_t max_problems) {
    std::vector<SuppressionEntry> batch;
    SuppressionCsvReader reader([&](SuppressionEntry&& e) { batch.push_back(std::move(e)); },
                                [&](CsvProblem&& p) {
                                    ++result.problem_count;
                                    if (result.problems.size() < max_problems)
                                        result.problems.push_back(std::move(p));
                                });
    auto flush = [&] {
        if (!batch.empty() && !store.add(batch, err)) return false;
        result.imported += batch.size();
        batch.clear();
        return true;
    };
    std::string buf(1 << 20, '\0');
    while (in.read(buf.data(), std::streamsize(buf.size())) || in.gcount() > 0) {
        reader.feed(std::string_view(buf.data(), size_t(in.gcount())));
        if (batch.size() >= import_batch && !flush()) return false;
    }
    reader.finish();
    result.rows = reader.rows();
    return flush();
}

std::string suppression_csv_row(const SuppressionEntry& e) {
    return fmt::format("{},{},{},{},{},{}\r\n", quoted(e.address), quoted(e.scope),
                       reason_name(e.reason), e.created, e.expires, quoted(e.event));
}

size_t export_suppression_csv(const SuppressionStore& store, std::ostream& out, int64_t now) {
    out << suppression_csv_header;
    SuppressionQuery q;
    q.limit = 10000;
    q.now = now;
    size_t n = 0;
    for (;;) {
        SuppressionPage page = store.list(q);
        for (const auto& e : page.entries) out << suppression_csv_row(e);
        n += page.entries.size();
        if (page.next == 0) return n;
        q.after = page.next;
    }
}

}  // namespace kasi
