#include "core/ctl/ctl_bounce.h"

#include <cstdio>
#include <string_view>

#include "core/classify/classifier.h"
#include "core/classify/rules_dir.h"
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
                 "  LINES: reply_code<TAB>enhanced_status<TAB>reply_text<TAB>remote_host"
                 "[<TAB>command]\n"
                 "  prints reason<TAB>class<TAB>hard|soft<TAB>scope<TAB>provider per line\n");
    return 2;
}

}  // namespace

int ctl_bounce(const std::string& dir, const std::vector<std::string>& args) {
    if (args.size() != 1 || args[0] != "classify") return usage_error();
    ClassifierSources src;
    std::string err;
    bool ok = dir.empty() ? (src.rules_dir = default_rules_dir(), true)
                          : ClassifierSources::for_config(dir + "/config", src, err);
    auto c = ok ? Classifier::load(src, err) : nullptr;
    if (!c) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    std::string line;
    while (read_line(stdin, line)) {
        std::string out = classify_line(*c, line);
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace kasi
