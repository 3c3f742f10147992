#include "core/classify/rule_file.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <re2/re2.h>

#include "core/classify/reply_text.h"
#include "core/classify/taxonomy.h"
#include "core/util/file.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// One word of a line: a bare word (possibly key=value), a "quoted" text or a /regex/,
// the last two optionally negated with a leading '!'.
struct Token {
    enum Type { word, quoted, regex } type = word;
    bool negate = false;
    std::string text;
};

// Reads a delimited token starting at line[i] == delim; `keep_escapes` leaves backslash
// sequences other than \<delim> for RE2 to read.
bool read_delimited(std::string_view line, size_t& i, char delim, bool keep_escapes,
                    std::string& out, std::string& why) {
    for (++i; i < line.size(); ++i) {
        char c = line[i];
        if (c == delim) {
            ++i;
            if (i < line.size() && line[i] != ' ' && line[i] != '\t') {
                why = "a blank must follow the closing " + std::string(1, delim);
                return false;
            }
            return true;
        }
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i >= line.size()) break;
        char e = line[i];
        if (e == delim || (!keep_escapes && e == '\\')) {
            out += e;
        } else if (keep_escapes) {
            out += '\\';
            out += e;
        } else {
            why = std::string("unknown escape \\") + e + " (only \\\" and \\\\)";
            return false;
        }
    }
    why = std::string("unterminated ") + (delim == '"' ? "string" : "regex");
    return false;
}

bool tokenize(std::string_view line, std::vector<Token>& out, std::string& why) {
    size_t i = 0;
    while (i < line.size()) {
        char c = line[i];
        if (c == ' ' || c == '\t' || c == '\r') {
            ++i;
            continue;
        }
        if (c == '#') return true;
        Token t;
        if (c == '!' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '/')) {
            t.negate = true;
            c = line[++i];
        }
        if (c == '"' || c == '/') {
            t.type = c == '"' ? Token::quoted : Token::regex;
            if (!read_delimited(line, i, c, c == '/', t.text, why)) return false;
        } else {
            size_t e = line.find_first_of(" \t\r", i);
            t.text = std::string(line.substr(i, e == std::string_view::npos ? e : e - i));
            i = e == std::string_view::npos ? line.size() : e;
        }
        out.push_back(std::move(t));
    }
    return true;
}

bool is_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '/'))
            return false;
    return true;
}

// Checks an RE2 regex the way the matcher will compile it.
bool check_regex(const std::string& re, std::string& why) {
    RE2::Options o;
    o.set_encoding(RE2::Options::EncodingLatin1);
    o.set_log_errors(false);
    o.set_case_sensitive(false);
    RE2 r(re, o);
    if (r.ok()) return true;
    why = "bad regex /" + re + "/: " + r.error();
    return false;
}

bool text_pattern(const Token& t, TextPattern& out, std::string& why) {
    if (t.text.empty()) {
        why = "an empty text matches everything";
        return false;
    }
    out.regex = t.type == Token::regex;
    out.text = out.regex ? t.text : normalize_phrase(t.text);
    return !out.regex || check_regex(out.text, why);
}

bool check_reason(std::string_view name, std::string& why) {
    if (is_known_reason(name)) return true;
    why = "unknown reason '" + std::string(name) + "'";
    return false;
}

// yes|no
bool parse_yes_no(std::string_view v, bool& out, std::string& why) {
    if (v == "yes" || v == "no") {
        out = v == "yes";
        return true;
    }
    why = "hard= is yes or no, not '" + std::string(v) + "'";
    return false;
}

// The class=/hard=/scope= options shared by `reason` and `rule` lines.
bool parse_option(std::string_view key, std::string_view v, std::optional<std::string>& cls,
                  std::optional<bool>& hard, std::optional<Scope>& scope, std::string& why) {
    if (key == "class") {
        if (!is_known_class(v)) {
            why = "unknown class '" + std::string(v) + "'";
            return false;
        }
        cls = std::string(v);
        return true;
    }
    if (key == "hard") {
        bool h = false;
        if (!parse_yes_no(v, h, why)) return false;
        hard = h;
        return true;
    }
    Scope s;
    if (!parse_scope(v, s)) {
        why = "unknown scope '" + std::string(v) + "' (recipient, message, sender, destination)";
        return false;
    }
    scope = s;
    return true;
}

bool is_option_key(std::string_view k) {
    return k == "class" || k == "hard" || k == "scope";
}

bool parse_reason(const std::vector<Token>& t, RuleSet& rs, const RuleLoc& loc, std::string& why) {
    if (t.size() < 2 || t[1].type != Token::word) {
        why = "reason needs a name";
        return false;
    }
    if (!check_reason(t[1].text, why)) return false;
    std::optional<std::string> cls;
    std::optional<bool> hard;
    std::optional<Scope> scope;
    for (size_t i = 2; i < t.size(); ++i) {
        size_t eq = t[i].text.find('=');
        std::string_view k = std::string_view(t[i].text).substr(0, eq);
        if (t[i].type != Token::word || eq == std::string::npos || !is_option_key(k)) {
            why = "reason takes class=, hard= and scope=, not '" + t[i].text + "'";
            return false;
        }
        if (!parse_option(k, std::string_view(t[i].text).substr(eq + 1), cls, hard, scope, why))
            return false;
    }
    if (!cls || !hard || !scope) {
        why = "reason " + t[1].text + " needs class=, hard= and scope=";
        return false;
    }
    rs.reasons.push_back({t[1].text, *cls, *hard, *scope, loc});
    return true;
}

bool parse_table_line(const std::vector<Token>& t, RuleSet& rs, const RuleLoc& loc,
                      std::string& why) {
    bool is_status = t[0].text == "status";
    if (t.size() != 3 || t[1].type != Token::word || t[2].type != Token::word) {
        why = t[0].text + " takes a pattern and a reason";
        return false;
    }
    if (!check_reason(t[2].text, why)) return false;
    if (is_status) {
        StatusEntry e{{}, t[1].text, t[2].text, loc};
        if (parse_status_pattern(t[1].text, e.pattern)) {
            rs.statuses.push_back(std::move(e));
            return true;
        }
        why = "bad status pattern '" + t[1].text + "' (like 5.1.1, 5.7.*, 5.7.500-599)";
        return false;
    }
    CodeEntry e{{}, t[1].text, t[2].text, loc};
    if (parse_code_pattern(t[1].text, e.pattern)) {
        rs.codes.push_back(std::move(e));
        return true;
    }
    why = "bad reply code pattern '" + t[1].text + "' (like 550, 55x, 5xx, 501-507)";
    return false;
}

bool parse_phrase(const std::vector<Token>& t, RuleSet& rs, const RuleLoc& loc, std::string& why) {
    if (t.size() != 3 || t[1].type != Token::word || t[2].type == Token::word || t[2].negate) {
        why = "phrase takes a group name and one \"text\" or /regex/";
        return false;
    }
    if (!is_name(t[1].text)) {
        why = "bad group name '" + t[1].text + "'";
        return false;
    }
    TextPattern pattern;
    if (!text_pattern(t[2], pattern, why)) return false;
    rs.phrases.push_back(PhraseDef{t[1].text, std::move(pattern), loc});
    return true;
}

constexpr std::pair<std::string_view, CondKey> cond_keys[] = {
    {"status", CondKey::status}, {"code", CondKey::code},         {"command", CondKey::command},
    {"kind", CondKey::kind},     {"provider", CondKey::provider}, {"means", CondKey::means},
    {"says", CondKey::says},     {"host", CondKey::host},         {"mta", CondKey::mta}};

// Checks and stores one value of a key=value condition.
bool add_value(Condition& c, std::string_view v, std::string& why) {
    std::string bad;
    switch (c.key) {
        case CondKey::status: {
            StatusPattern p;
            if (parse_status_pattern(v, p)) return c.statuses.push_back(p), true;
            bad = "status pattern";
            break;
        }
        case CondKey::code: {
            CodePattern p;
            if (parse_code_pattern(v, p)) return c.codes.push_back(p), true;
            bad = "reply code pattern";
            break;
        }
        case CondKey::command:
            if (is_known_command(v) || v == "none") return c.words.emplace_back(v), true;
            bad = "command";
            break;
        case CondKey::kind: {
            OutcomeKind k;
            if (parse_outcome_kind(v, k)) return c.words.emplace_back(v), true;
            bad = "outcome kind";
            break;
        }
        case CondKey::means:
            if (is_known_reason(v) || v == "none") return c.words.emplace_back(v), true;
            bad = "reason";
            break;
        case CondKey::host:
            if (is_name(v)) return c.words.push_back(to_lower(v)), true;
            bad = "host name";
            break;
        case CondKey::mta:
            if (is_name(v)) return c.words.push_back(to_lower(v)), true;
            bad = "mta name";
            break;
        default:
            if (is_name(v)) return c.words.emplace_back(v), true;
            bad = c.key == CondKey::says ? "group name" : "provider name";
    }
    why = "bad " + bad + " '" + std::string(v) + "'";
    return false;
}

bool parse_condition(const Token& t, Condition& c, std::string& why) {
    if (t.type != Token::word) {
        c.key = CondKey::text;
        c.negate = t.negate;
        return text_pattern(t, c.text, why);
    }
    size_t eq = t.text.find('=');
    if (eq == std::string::npos || eq == 0) {
        why = "unexpected '" + t.text + "' (a condition is key=value, \"text\" or /regex/)";
        return false;
    }
    c.negate = t.text[eq - 1] == '!';
    std::string_view key = std::string_view(t.text).substr(0, c.negate ? eq - 1 : eq);
    auto it = std::find_if(std::begin(cond_keys), std::end(cond_keys),
                           [&](const auto& p) { return p.first == key; });
    if (it == std::end(cond_keys)) {
        why = "unknown condition '" + std::string(key) + "='";
        return false;
    }
    c.key = it->second;
    std::string_view vals = std::string_view(t.text).substr(eq + 1);
    if (vals.empty()) {
        why = std::string(key) + "= needs a value";
        return false;
    }
    for (const auto& v : split_list(vals, ","))
        if (!add_value(c, v, why)) return false;
    return true;
}

bool parse_rule(const std::vector<Token>& t, RuleSet& rs, const RuleLoc& loc, std::string& why) {
    if (t.size() < 2 || t[1].type != Token::word) {
        why = "rule needs a reason, @status or @code";
        return false;
    }
    RuleDef r;
    r.target = t[1].text;
    r.loc = loc;
    if (r.target != "@status" && r.target != "@code" && !check_reason(r.target, why)) return false;
    for (size_t i = 2; i < t.size(); ++i) {
        size_t eq = t[i].text.find('=');
        if (t[i].type == Token::word && eq != std::string::npos &&
            is_option_key(std::string_view(t[i].text).substr(0, eq))) {
            if (!parse_option(std::string_view(t[i].text).substr(0, eq),
                              std::string_view(t[i].text).substr(eq + 1), r.cls, r.hard, r.scope,
                              why))
                return false;
            continue;
        }
        Condition c;
        if (!parse_condition(t[i], c, why)) return false;
        r.conds.push_back(std::move(c));
    }
    rs.rules.push_back(std::move(r));
    return true;
}

bool parse_line(const std::vector<Token>& t, RuleSet& rs, const RuleLoc& loc, std::string& why) {
    const std::string& d = t[0].text;
    if (t[0].type != Token::word) {
        why = "a line starts with reason, status, code, phrase or rule";
        return false;
    }
    if (d == "reason") return parse_reason(t, rs, loc, why);
    if (d == "status" || d == "code") return parse_table_line(t, rs, loc, why);
    if (d == "phrase") return parse_phrase(t, rs, loc, why);
    if (d == "rule") return parse_rule(t, rs, loc, why);
    why = "unknown directive '" + d + "' (reason, status, code, phrase, rule)";
    return false;
}

}  // namespace

std::string RuleLoc::where() const {
    size_t slash = path.rfind('/');
    return (slash == std::string::npos ? path : path.substr(slash + 1)) + ":" +
           std::to_string(line);
}

bool parse_rule_file(std::string_view text, const std::string& path, RuleSet& into,
                     std::string& err) {
    int n = 0;
    while (!text.empty()) {
        size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
        ++n;
        std::vector<Token> tokens;
        std::string why;
        if (line.find('\0') != std::string_view::npos) why = "NUL byte in line";
        if (why.empty() && tokenize(line, tokens, why) && tokens.empty()) continue;
        if (why.empty() && parse_line(tokens, into, RuleLoc{path, n}, why)) continue;
        err = path + ":" + std::to_string(n) + ": " + why;
        return false;
    }
    return true;
}

bool load_rule_file(const std::string& path, RuleSet& into, std::string& err) {
    std::string text;
    if (!read_whole_file(path, text)) {
        err = path + ": " + std::strerror(errno ? errno : ENOENT);
        return false;
    }
    return parse_rule_file(text, path, into, err);
}

bool list_rule_files(const std::string& dir, std::vector<std::string>& out, std::string& err) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) {
        err = dir + ": " + std::strerror(errno);
        return false;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d.get())) {
        std::string_view n = e->d_name;
        if (n.size() > 6 && n.substr(n.size() - 6) == ".rules" && n[0] != '.')
            names.emplace_back(n);
    }
    std::sort(names.begin(), names.end());
    for (auto& n : names) out.push_back(dir + "/" + n);
    return true;
}

}  // namespace kasi
