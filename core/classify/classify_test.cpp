// The classifier (core/classify): the rule-file format and its errors, the order rules are
// tried in, outcomes that are not replies, hostile replies, and the provider table.
// classify_corpus_test.cpp measures the shipped rules against real replies.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/classify/classifier.h"
#include "core/classify/provider_table.h"
#include "core/classify/reply_text.h"
#include "core/classify/rule_file.h"
#include "core/classify/status_code.h"

using namespace kasi;
namespace fs = std::filesystem;

namespace {

const std::string kRules = KASI_SOURCE_ROOT "/rules";

std::shared_ptr<const Classifier> shipped() {
    static auto c = [] {
        std::string err;
        auto r = Classifier::load(ClassifierSources{kRules, {}}, err);
        INFO(err);
        REQUIRE(r);
        return r;
    }();
    return c;
}

Classification reply(int code, std::string_view enhanced, std::string_view text,
                     std::string_view command = "", std::string_view host = "") {
    ClassifyInput in;
    in.code = code;
    in.enhanced = enhanced;
    in.text = text;
    in.command = command;
    in.remote_host = host;
    return shipped()->classify(in);
}

Classification outcome(OutcomeKind k, std::string_view text) {
    ClassifyInput in;
    in.kind = k;
    in.text = text;
    return shipped()->classify(in);
}

// A scratch rules directory: a copy of the shipped one, plus files a test writes.
struct ScratchRules {
    std::string dir;
    ScratchRules() {
        char tmpl[] = "/tmp/kasi-classify-XXXXXX";
        dir = mkdtemp(tmpl);
        fs::copy(kRules, dir, fs::copy_options::recursive);
    }
    ~ScratchRules() { fs::remove_all(dir); }
    std::string write(const std::string& rel, const std::string& text) const {
        std::string p = dir + "/" + rel;
        fs::create_directories(fs::path(p).parent_path());
        std::ofstream(p) << text;
        return p;
    }
    std::string load_error(std::vector<std::string> operator_files = {}) const {
        std::string err;
        auto c = Classifier::load(ClassifierSources{dir, std::move(operator_files)}, err);
        return c ? std::string() : err;
    }
};

std::string parse_error(const std::string& text) {
    RuleSet rs;
    std::string err;
    return parse_rule_file(text, "t.rules", rs, err) ? std::string() : err;
}

}  // namespace

TEST_CASE("classifier: the shipped rules load and decide common replies", "[classify]") {
    REQUIRE(shipped()->rule_count() > 100);
    auto c = reply(550, "5.1.1",
                   "550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", "RCPT");
    CHECK(c.reason == "userunknown");
    CHECK(c.cls == "invalid_recipient");
    CHECK(c.hard);
    CHECK(c.scope == Scope::recipient);
    CHECK(c.rule.find(".rules:") != std::string::npos);
    c = reply(552, "5.2.2", "552 5.2.2 Mailbox full", "RCPT");
    CHECK(c.reason == "mailboxfull");
    CHECK(c.cls == "mailbox_full");
    CHECK_FALSE(c.hard);
    c = reply(
        554, "5.7.1",
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        "RCPT");
    CHECK(c.reason == "blocked");
    CHECK(c.cls == "reputation_block");
    CHECK(c.scope == Scope::sender);
    c = reply(550, "5.7.1",
              "550 5.7.1 This message has been scored as spam with a probability of 99%", "DATA");
    CHECK(c.reason == "spamdetected");
    CHECK(c.scope == Scope::message);
    // Gmail's "unusual rate" deferral is its rate limit: sisimai's reason, Kasi's class
    c = reply(421, "4.7.28", "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail",
              "DATA", "gmail-smtp-in.l.google.com");
    CHECK(c.reason == "blocked");
    CHECK(c.cls == "rate_limited");
    CHECK(c.provider == "google");
    CHECK_FALSE(c.hard);
    // greylisting is no block: the destination asks for a later retry
    c = reply(451, "4.7.1", "451 4.7.1 Greylisting in action, please come back later", "RCPT");
    CHECK(c.reason == "onhold");
    CHECK(c.cls == "remote_system");
    CHECK(reply(450, "4.7.1",
                "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]",
                "RCPT")
              .reason == "requireptr");
    // a provider rule keeps sisimai's reason and gives the class that fits Kasi's use
    c = reply(421, "4.7.0",
              "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred "
              "due to unexpected volume or user complaints",
              "MAIL", "mta7.am0.yahoodns.net");
    CHECK(c.reason == "rejected");
    CHECK(c.cls == "reputation_block");
}

TEST_CASE("classifier: a 2xx reply is delivered without reading the text", "[classify]") {
    auto c = reply(250, "2.0.0", "250 2.0.0 OK user unknown mailbox full");
    CHECK(c.reason == "delivered");
    CHECK(c.cls == "delivered");
    CHECK(c.rule == "2xx");
    CHECK(reply(0, "2.1.5", "whatever").reason == "delivered");
}

TEST_CASE("classifier: a temporary failure is never hard", "[classify]") {
    auto c = reply(450, "4.1.1",
                   "450 4.1.1 <a@example.org>: Recipient address rejected: User unknown", "RCPT");
    CHECK(c.reason == "userunknown");
    CHECK_FALSE(c.hard);
    CHECK(reply(550, "5.1.1", "550 5.1.1 User unknown", "RCPT").hard);
}

TEST_CASE("classifier: outcomes that are not replies", "[classify]") {
    auto c = outcome(OutcomeKind::connect, "connection refused");
    CHECK(c.reason == "networkerror");
    CHECK(c.cls == "connection_failure");
    CHECK(c.scope == Scope::destination);
    // the text of a connect failure is not read as a reply ("user unknown" says nothing here)
    CHECK(outcome(OutcomeKind::connect, "user unknown").reason == "networkerror");
    CHECK(outcome(OutcomeKind::timeout, "timeout after DATA").cls == "connection_failure");
    c = outcome(OutcomeKind::dns, "NXDOMAIN for example.invalid");
    CHECK(c.reason == "hostunknown");
    CHECK(c.hard);
    c = outcome(OutcomeKind::dns, "null MX (RFC 7505)");
    CHECK(c.reason == "notaccept");
    CHECK(c.hard);
    c = outcome(OutcomeKind::dns, "SERVFAIL");
    CHECK(c.reason == "networkerror");
    CHECK(c.cls == "dns_failure");
    CHECK_FALSE(c.hard);
    c = outcome(OutcomeKind::tls, "certificate verify failed");
    CHECK(c.reason == "failedstarttls");
    CHECK(c.cls == "tls_failure");
    CHECK(outcome(OutcomeKind::protocol, "garbage reply").cls == "protocol_error");
    CHECK(outcome(OutcomeKind::local, "expired after 5 days in the queue").reason == "expired");
    CHECK(outcome(OutcomeKind::local, "bounced by the operator").reason == "undefined");
}

TEST_CASE("classifier: provider from the remote host, else the recipient domain", "[classify]") {
    CHECK(reply(550, "5.1.1", "x", "RCPT", "mta7.am0.yahoodns.net").provider == "yahoo");
    CHECK(reply(550, "5.1.1", "x", "RCPT", "192.0.2.1").provider == "other");
    ClassifyInput in;
    in.code = 550;
    in.text = "550 no";
    in.remote_host = "mx.example.net";
    in.domain = "gmail.com";
    CHECK(shipped()->classify(in).provider == "google");
    in.code = 250;
    CHECK(shipped()->classify(in).provider == "google");
}

TEST_CASE("classifier: hostile and broken replies are classified in bounded time", "[classify]") {
    using clock = std::chrono::steady_clock;
    auto timed = [](int code, std::string_view st, const std::string& text) {
        auto t0 = clock::now();
        auto c = reply(code, st, text, "RCPT");
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
        CHECK(ms < 500);
        return c;
    };
    // no enhanced code: the one in the text counts
    CHECK(timed(550, "", "550 5.1.1 <a@b>... User unknown").reason == "userunknown");
    CHECK(timed(550, "", "550 requested action not taken: 192.0.2.1 user unknown").reason ==
          "userunknown");
    // multi-line, with different codes on different lines
    auto c =
        timed(550, "", "550-5.7.1 first line\r\n451-4.3.0 second\r\n550 5.2.2 mailbox full\r\n");
    CHECK(c.reason == "mailboxfull");
    // NUL bytes and invalid UTF-8
    static constexpr char nul_bytes[] = "550 5.1.1 user\0 unknown \xff\xfe\xc3(";
    std::string nul(nul_bytes, sizeof nul_bytes - 1);
    c = timed(550, "5.1.1", nul);
    CHECK(c.reason == "userunknown");
    std::string bad(4096, '\xff');
    CHECK_FALSE(timed(550, "5.7.1", bad).reason.empty());
    // 100 KB: the decisive part at the start counts, the rest is not read
    std::string big = "550 5.7.1 blocked using zen.spamhaus.org " + std::string(100 * 1024, 'a');
    CHECK(timed(550, "5.7.1", big).reason == "blocked");
    std::string late = std::string(100 * 1024, 'x') + " mailbox full";
    CHECK(timed(550, "", late).reason != "mailboxfull");
    // pathological repetition for a regex engine
    std::string rep;
    for (int i = 0; i < 5000; ++i) rep += "user <a> not ";
    CHECK_FALSE(timed(550, "", rep).reason.empty());
    CHECK(timed(0, "", "").reason == "undefined");
    CHECK(timed(0, "garbage", "\r\n\r\n").reason == "undefined");
    CHECK(timed(999, "9.9.9", "???").reason == "onhold");
}

TEST_CASE("reply text: folded, lines joined, capped", "[classify]") {
    CHECK(normalize_reply_text("550-5.1.1 The email account\r\n550-5.1.1 does NOT exist.\r\n"
                               "550 5.1.1 Try again") ==
          "550-5.1.1 the email account does not exist. try again");
    CHECK(normalize_reply_text(std::string("  A\t\tB \0 C  ", 12)) == "a b c");
    CHECK(normalize_reply_text(std::string(10000, 'Q')).size() == kMaxClassifiedText);
    CHECK(normalize_reply_text("line one\n550 not a continuation") ==
          "line one 550 not a continuation");
    CHECK(normalize_phrase(" - SPAM ") == " - spam ");
}

TEST_CASE("status codes: parsing, finding in text, patterns", "[classify]") {
    StatusCode s;
    CHECK(parse_status("5.1.1", s));
    CHECK(s.str() == "5.1.1");
    CHECK(parse_status("4.7.650", s));
    CHECK_FALSE(parse_status("3.1.1", s));
    CHECK_FALSE(parse_status("5.1", s));
    CHECK_FALSE(parse_status("5.1.1.1", s));
    CHECK_FALSE(parse_status("5.1.1234", s));
    CHECK(find_status("550 5.2.2 full").str() == "5.2.2");
    CHECK(find_status("from 192.0.2.1 and 10.4.5.6").str().empty());
    CHECK(find_status("sisimai v4.25.1 says 5.1.1").str() == "5.1.1");
    CHECK(find_status("").str().empty());
    StatusPattern p;
    REQUIRE(parse_status_pattern("5.7.500-599", p));
    CHECK(p.matches({5, 7, 550}));
    CHECK_FALSE(p.matches({5, 7, 1}));
    REQUIRE(parse_status_pattern("*.2.2", p));
    CHECK(p.matches({4, 2, 2}));
    CHECK_FALSE(p.matches({}));
    CHECK_FALSE(parse_status_pattern("6.1.1", p));
    CHECK_FALSE(parse_status_pattern("5.x.1", p));
    CodePattern cp;
    REQUIRE(parse_code_pattern("55x", cp));
    CHECK(cp.matches(552));
    CHECK_FALSE(cp.matches(450));
    CHECK_FALSE(cp.matches(0));
    REQUIRE(parse_code_pattern("501-507", cp));
    CHECK(cp.matches(503));
    CHECK_FALSE(cp.matches(550));
    CHECK_FALSE(parse_code_pattern("650", cp));
    CHECK_FALSE(parse_code_pattern("5500", cp));
}

TEST_CASE("rule files: every bad line is an error with file:line", "[classify]") {
    CHECK(parse_error("# ok\n\nrule userunknown \"user unknown\" command=RCPT\n").empty());
    CHECK(parse_error("\nrule nosuchreason \"x\"\n") == "t.rules:2: unknown reason 'nosuchreason'");
    CHECK(parse_error("reason blocked class=nope hard=no scope=sender\n") ==
          "t.rules:1: unknown class 'nope'");
    CHECK(parse_error("reason blocked class=policy hard=maybe scope=sender\n")
              .rfind("t.rules:1: hard=", 0) == 0);
    CHECK(parse_error("reason blocked class=policy hard=no scope=planet\n")
              .rfind("t.rules:1: unknown scope", 0) == 0);
    CHECK(parse_error("x\nrule blocked /unclosed(/\n").rfind("t.rules:1: unknown directive", 0) ==
          0);
    CHECK(parse_error("rule blocked /unclosed(/\n").rfind("t.rules:1: bad regex", 0) == 0);
    CHECK(parse_error("rule blocked \"open\n").rfind("t.rules:1: unterminated string", 0) == 0);
    CHECK(parse_error("code 650 blocked\n").rfind("t.rules:1: bad reply code", 0) == 0);
    CHECK(parse_error("rule blocked code=5x\n").rfind("t.rules:1: bad reply code", 0) == 0);
    CHECK(parse_error("status 5.1 blocked\n").rfind("t.rules:1: bad status pattern", 0) == 0);
    CHECK(parse_error("rule blocked color=red\n") == "t.rules:1: unknown condition 'color='");
    CHECK(parse_error("rule blocked command=FETCH\n").rfind("t.rules:1: bad command", 0) == 0);
    CHECK(parse_error("rule blocked kind=carrier-pigeon\n").rfind("t.rules:1: bad outcome", 0) ==
          0);
    CHECK(parse_error("phrase g \"\"\n").rfind("t.rules:1: an empty text", 0) == 0);
    CHECK(parse_error("rule blocked \"a\"b\n").rfind("t.rules:1: a blank must follow", 0) == 0);
    CHECK(parse_error(std::string("rule blocked \"a\0\"\n", 18)).rfind("t.rules:1: NUL", 0) == 0);
}

TEST_CASE("classifier load: errors across files name the file and line", "[classify]") {
    ScratchRules r;
    CHECK(r.load_error().empty());
    std::string op = r.write("op/classify.rules", "# mine\nrule blocked says=no-such-group\n");
    CHECK(r.load_error({op}) == op + ":2: no phrase line defines the group 'no-such-group'");
    op = r.write("op/classify.rules", "rule blocked provider=nosuchprovider\n");
    CHECK(r.load_error({op}) ==
          op + ":1: unknown provider 'nosuchprovider' (not in providers.tsv)");
    op = r.write("op/classify.rules",
                 "reason blocked class=policy hard=no scope=sender\n"
                 "reason blocked class=policy hard=no scope=sender\n");
    CHECK(r.load_error({op}).rfind(op + ":2: reason blocked is already defined", 0) == 0);
    CHECK(r.load_error({r.dir + "/op/missing.rules"}).rfind(r.dir + "/op/missing.rules: ", 0) == 0);
    std::string bad = r.write("classify/55-bad.rules", "\n\nrule spamdetected /a(b/\n");
    CHECK(r.load_error().rfind(bad + ":3: bad regex", 0) == 0);
    fs::remove(bad);
    std::string reasons = r.dir + "/classify/00-reasons.rules";
    std::string text;
    {
        std::ifstream in(reasons);
        text.assign(std::istreambuf_iterator<char>(in), {});
    }
    r.write("classify/00-reasons.rules", text.substr(0, text.find("reason vacation")));
    CHECK(r.load_error().find("no 'reason feedback' line gives its class") != std::string::npos);
    r.write("classify/00-reasons.rules", text);
    r.write("providers.tsv", "google.com google\nbad..suffix x\n");
    CHECK(r.load_error() == r.dir + "/providers.tsv:2: bad host suffix 'bad..suffix'");
}

TEST_CASE("classifier: operator rules are tried first and override", "[classify]") {
    ScratchRules r;
    std::string op = r.write("op/classify.rules",
                             "# this site's gateway says 'user unknown' when it means 'not you'\n"
                             "rule blocked \"user unknown\" host=gw.example.net class=policy\n"
                             "phrase mailboxfull \"casier plein\"\n"
                             "reason suspend class=invalid_recipient hard=yes scope=recipient\n"
                             "status 5.1.9 suspend\n");
    std::string err;
    auto c = Classifier::load(ClassifierSources{r.dir, {op}}, err);
    INFO(err);
    REQUIRE(c);
    ClassifyInput in;
    in.code = 550;
    in.text = "550 5.1.1 user unknown";
    in.command = "RCPT";
    in.remote_host = "gw.example.net";
    auto got = c->classify(in);
    CHECK(got.reason == "blocked");
    CHECK(got.cls == "policy");  // the rule's override of the reason's class
    CHECK(got.rule == "classify.rules:2");
    in.remote_host = "mx.example.net";
    CHECK(c->classify(in).reason == "userunknown");
    in.text = "550 casier plein";
    in.enhanced = "5.0.0";
    CHECK(c->classify(in).reason == "mailboxfull");  // a phrase added to a shipped group
    in.text = "550 gone";
    in.enhanced = "5.1.9";
    got = c->classify(in);
    CHECK(got.reason == "suspend");  // the operator's status line comes first
    CHECK(got.cls == "invalid_recipient");
    CHECK(got.hard);
}

TEST_CASE("classifier: mta= names the writer of a bounce report", "[classify]") {
    ClassifyInput in;
    in.code = 550;
    in.text = "550 Unknown user a@dest.example";
    // a bare line: the phrase decides
    CHECK(shipped()->classify(in).reason == "userunknown");
    // in a report, no command and no X.1.x status: a filter's words, unless the writer
    // is known to mean a missing mailbox by them
    in.mta = "other";
    CHECK(shipped()->classify(in).reason == "filtered");
    in.mta = "mcafee";
    CHECK(shipped()->classify(in).reason == "userunknown");
    in.mta = "other";
    in.command = "RCPT";
    CHECK(shipped()->classify(in).reason == "userunknown");
    in.mta = "";
    ScratchRules r;
    std::string op = r.write("op/classify.rules", "rule blocked mta=none \"nope\"\n");
    std::string err;
    auto c = Classifier::load(ClassifierSources{r.dir, {op}}, err);
    INFO(err);
    REQUIRE(c);
    in.text = "550 nope";
    CHECK(c->classify(in).reason == "blocked");
    in.mta = "somegateway";
    CHECK(c->classify(in).reason != "blocked");
}

TEST_CASE("provider table: longest suffix on a label boundary", "[classify]") {
    std::string err;
    auto t = ProviderTable::parse(
        "# c\noutlook.com microsoft\nolc.protection.outlook.com outlook-consumer\n"
        ".google.com\tgoogle # trailing comment\n",
        "p.tsv", err);
    INFO(err);
    REQUIRE(t);
    CHECK(t->provider_of("example-com.mail.protection.outlook.com") == "microsoft");
    CHECK(t->provider_of("x.olc.protection.outlook.com.") == "outlook-consumer");
    CHECK(t->provider_of("ALT1.GMAIL-SMTP-IN.L.GOOGLE.COM") == "google");
    CHECK(t->provider_of("google.com") == "google");
    CHECK(t->provider_of("notgoogle.com") == "other");
    CHECK(t->provider_of("192.0.2.1") == "other");
    CHECK(t->provider_of("2001:db8::1") == "other");
    CHECK(t->provider_of("") == "other");
    CHECK(t->providers() == std::vector<std::string>{"google", "microsoft", "outlook-consumer"});
    CHECK_FALSE(ProviderTable::parse("a.com x\na.com y\n", "p.tsv", err));
    CHECK(err == "p.tsv:2: suffix a.com is already x");
    CHECK_FALSE(ProviderTable::parse("a.com\n", "p.tsv", err));
    CHECK(err == "p.tsv:1: expected SUFFIX PROVIDER");
    CHECK_FALSE(ProviderTable::parse("a.com Big\n", "p.tsv", err));
    CHECK(err.rfind("p.tsv:1: bad provider name", 0) == 0);
    CHECK(ProviderTable::shipped().provider_of("gmail-smtp-in.l.google.com") == "google");
    CHECK(ProviderTable::shipped_error().empty());
}
