// The classification rule files: a line-oriented format an operator can read and edit.
// docs/bounces.md is the reference; in short, each line is one directive, `#` starts a
// comment (at the start of a word), and words are separated by blanks:
//
//   reason  NAME class=CLASS hard=yes|no scope=SCOPE     a reason's defaults
//   status  STATUS-PATTERN REASON                        the enhanced-status table
//   code    CODE-PATTERN REASON                          the reply-code table
//   phrase  GROUP TEXT                                   a phrase that says GROUP
//   rule    TARGET CONDITION... [class=] [hard=] [scope=]
//
// TEXT is "a quoted substring" or /an RE2 regex/; both are matched against the reply text
// as reply_text.h folds it (lower case, one space per blank run). A rule's TARGET is a
// reason, or @status / @code for "what the status or code table says". Its conditions
// must all hold (AND); write two rules for OR:
//
//   "text"  /regex/        the text contains it            !"text" !/regex/  it does not
//   status=P,P             the enhanced status matches one (status_code.h patterns)
//   code=P,P               the reply code matches one
//   command=C,C            the SMTP command (CONNECT EHLO HELO STARTTLS AUTH MAIL RCPT DATA
//                          BDAT RSET QUIT; "none": not known)
//   kind=K,K               the outcome kind (reply connect timeout dns tls protocol local)
//   provider=N,N           the destination's provider (provider_table.h)
//   means=R,R              the status table's reason for the enhanced status is one of these
//                          ("none": the table has no line for it, or there is no status)
//   says=G,G               a phrase of one of these groups is in the text
//   host=SUFFIX,SUFFIX     the remote host is, or ends with ".", one of these
// Every key also has a negated form: status!=, code!=, command!= ... (none of them).
//
// This parser only checks each line on its own (names, patterns, regex syntax); the
// classifier checks what spans files (a says= group that no phrase defines, a reason
// without defaults) when it builds itself from every file.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/classify/classification.h"
#include "core/classify/status_code.h"

namespace kasi {

struct RuleLoc {
    std::string path;  // as given to the parser, for errors ("path:line: ...")
    int line = 0;
    std::string where() const;  // "file:line" with the file's base name, for Classification::rule
};

struct ReasonDef {
    std::string name, cls;
    bool hard = false;
    Scope scope = Scope::recipient;
    RuleLoc loc;
};

struct StatusEntry {
    StatusPattern pattern;
    std::string text;  // the pattern as written
    std::string reason;
    RuleLoc loc;
};

struct CodeEntry {
    CodePattern pattern;
    std::string text;
    std::string reason;
    RuleLoc loc;
};

// A text to look for: a folded substring, or an RE2 regex over the folded text.
struct TextPattern {
    std::string text;
    bool regex = false;
    bool operator==(const TextPattern&) const = default;
};

struct PhraseDef {
    std::string group;
    TextPattern pattern;
    RuleLoc loc;
};

enum class CondKey : uint8_t {
    text,
    status,
    code,
    command,
    kind,
    provider,
    means,
    says,
    host,
    mta
};

struct Condition {
    CondKey key = CondKey::text;
    bool negate = false;
    TextPattern text;                     // key text
    std::vector<StatusPattern> statuses;  // key status
    std::vector<CodePattern> codes;       // key code
    std::vector<std::string> words;       // the other keys' values
};

struct RuleDef {
    std::string target;  // a reason, "@status" or "@code"
    std::vector<Condition> conds;
    std::optional<std::string> cls;
    std::optional<bool> hard;
    std::optional<Scope> scope;
    RuleLoc loc;
};

// Everything one set of files (the shipped ones, or the operator's) defines, in file order.
struct RuleSet {
    std::vector<ReasonDef> reasons;
    std::vector<StatusEntry> statuses;
    std::vector<CodeEntry> codes;
    std::vector<PhraseDef> phrases;
    std::vector<RuleDef> rules;
};

// Parses `text` (the contents of `path`) into `into`, appending. On the first bad line:
// false, err = "path:line: what is wrong".
bool parse_rule_file(std::string_view text, const std::string& path, RuleSet& into,
                     std::string& err);

// Reads and parses one file; a file that cannot be read is an error ("path: why").
bool load_rule_file(const std::string& path, RuleSet& into, std::string& err);

// The *.rules files of a directory, sorted by name; false (and err) if it cannot be read.
bool list_rule_files(const std::string& dir, std::vector<std::string>& out, std::string& err);

}  // namespace kasi
