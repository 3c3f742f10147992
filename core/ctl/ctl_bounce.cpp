#include "core/ctl/ctl_bounce.h"

#include <cstdio>
#include <string_view>

#include "core/classify/classifier.h"
#include "core/classify/rules_dir.h"
#include "core/feedback/bounce_parser.h"
#include "core/feedback/mbox.h"
#include "core/util/file.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// A reply is at most a few KB; a longer line is cut here (the classifier reads 8 KB).
constexpr size_t kMaxLine = 1 << 20;

// One line of `f` without its end (LF, or CRLF) into `out`, at most kMaxLine bytes kept;
// false at the end of the input.
bool read_line(FILE* f, std::string& out) {
    out.clear();
    int c;
    bool any = false;
    while ((c = std::getc(f)) != EOF) {
        any = true;
        if (c == '\n') break;
        if (out.size() < kMaxLine) out += char(c);
    }
    if (!out.empty() && out.back() == '\r') out.pop_back();
    return any;
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> f;
    while (f.size() < 5) {
        size_t tab = line.find('\t');
        f.push_back(line.substr(0, tab));
        if (tab == std::string_view::npos) break;
        line.remove_prefix(tab + 1);
    }
    f.resize(5);
    return f;
}

std::string classify_line(const Classifier& c, std::string_view line) {
    auto f = fields(line);
    ClassifyInput in;
    unsigned long long code = 0;
    if (parse_u64(trim(f[0]), code) && code < 1000) in.code = int(code);
    in.enhanced = trim(f[1]);
    in.text = f[2];
    in.remote_host = trim(f[3]);
    in.command = trim(f[4]);
    Classification r = c.classify(in);
    return r.reason + "\t" + r.cls + "\t" + (r.hard ? "hard" : "soft") + "\t" +
           std::string(scope_name(r.scope)) + "\t" + r.provider + "\n";
}

int usage_error() {
    std::fprintf(stderr,
                 "usage: kasictl [-c DIR] bounce classify < LINES\n"
                 "       kasictl [-c DIR] bounce parse FILE...  (a FILE may be an mbox)\n"
                 "  LINES: reply_code<TAB>enhanced_status<TAB>reply_text<TAB>remote_host"
                 "[<TAB>command]\n"
                 "  prints reason<TAB>class<TAB>hard|soft<TAB>scope<TAB>provider per line\n");
    return 2;
}

// A report is read whole; a larger file is cut here (its start holds the report).
constexpr size_t kMaxReport = 64 << 20;

std::string recipient_json(const std::string& file, const BounceReport& r,
                           const BouncedRecipient& b) {
    JsonObject o;
    o.str("file", file).str("recipient", b.recipient).str("status", b.status);
    o.str("reason", b.classification.reason);
    if (b.reply_code)
        o.num("replycode", b.reply_code);
    else
        o.raw("replycode", "null");
    o.boolean("hardbounce", b.classification.hard).str("addresser", r.addresser);
    o.str("action", b.action).str("diagnostic", b.diagnostic).str("remote_mta", b.remote_mta);
    o.str("class", b.classification.cls).str("command", b.command);
    o.str("format", r.format).str("mta", r.mta).str("rule", b.classification.rule);
    return o.done() + "\n";
}

int parse_files(const Classifier& c, const std::vector<std::string>& files) {
    BounceParser parser(std::shared_ptr<const Classifier>(&c, [](const Classifier*) {}));
    int rc = 0;
    for (const auto& f : files) {
        std::string raw, err;
        if (!read_file_capped(f, kMaxReport, raw, err)) {
            std::fprintf(stderr, "kasictl: %s: %s\n", f.c_str(), err.c_str());
            rc = 1;
            continue;
        }
        for (auto message : mbox_messages(raw)) {  // a file may be an mbox
            auto r = parser.parse(message);
            if (r.kind == BounceReport::Kind::not_bounce) {
                std::fprintf(stderr, "%s: not a bounce (%s)\n", f.c_str(), r.why.c_str());
                continue;
            }
            for (const auto& b : r.recipients) {
                auto line = recipient_json(f, r, b);
                std::fwrite(line.data(), 1, line.size(), stdout);
            }
        }
    }
    std::fflush(stdout);
    return rc;
}

}  // namespace

int ctl_bounce(const std::string& dir, const std::vector<std::string>& args) {
    bool parse = !args.empty() && args[0] == "parse" && args.size() >= 2;
    if (!parse && (args.size() != 1 || args[0] != "classify")) return usage_error();
    ClassifierSources src;
    std::string err;
    bool ok = dir.empty() ? (src.rules_dir = default_rules_dir(), true)
                          : ClassifierSources::for_config(dir + "/config", src, err);
    auto c = ok ? Classifier::load(src, err) : nullptr;
    if (!c) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    if (parse) return parse_files(*c, std::vector<std::string>(args.begin() + 1, args.end()));
    std::string line;
    while (read_line(stdin, line)) {
        std::string out = classify_line(*c, line);
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace kasi
