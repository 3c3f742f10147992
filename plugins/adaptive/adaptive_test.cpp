// The adaptive plugin's loader: the shipped defaults load, check and act on the replies
// they are written for (as Kasi's classifier reads them); config/adaptive.lua changes,
// removes and adds rules; every kind of error names the file and the line; a Lua error or
// an endless loop is a config error, not a hang. The circuit breakers' settings load into
// the BreakerPolicy, a tenant's override inherits, enabled = false turns tripping off, and
// each of their errors names its line too.
#include <fmt/format.h>
#include <re2/re2.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/classify/classifier.h"
#include "plugins/adaptive/adaptive.h"
#include "test/unit/temp_dir.h"

using namespace kasi;

namespace {

const std::string shipped_path = std::string(KASI_SOURCE_ROOT) + "/lua/kasi/adaptive.lua";

// A config dir whose lua.ini points require() at this source tree's lua/ (an installed
// copy, if any, must not stand in for the file under test).
struct Config {
    test::TempDir dir;
    std::string config = dir.path + "/config";

    Config() {
        std::filesystem::create_directories(config);
        write("lua.ini", fmt::format("[main]\nlibrary_path[]={}/lua\n", KASI_SOURCE_ROOT));
    }
    void write(const std::string& name, const std::string& text) const {
        std::ofstream(config + "/" + name) << text;
    }
    std::string path(const std::string& name) const { return config + "/" + name; }
    std::shared_ptr<const ShapingRules> load(Diagnostics& d) const {
        return load_adaptive_rules(ConfigDir(config), d);
    }
};

const ShapingRule* find(const ShapingRules& rules, const std::string& name) {
    for (const auto& r : rules.rules)
        if (r.name == name) return &r;
    return nullptr;
}

// The line of `path` that contains `needle` (1-based; 0 if none).
int line_of(const std::string& path, const std::string& needle) {
    std::ifstream in(path);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
        if (line.find(needle) != std::string::npos) return n;
    return 0;
}

std::string all(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += s + "\n";
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::shared_ptr<const ShapingRules> shipped_rules() {
    Config c;
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors) + all(d.warnings));
    REQUIRE(rules);
    return rules;
}

}  // namespace

TEST_CASE("without config/adaptive.lua the shipped defaults load and check") {
    Config c;
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors));
    REQUIRE(rules);
    CHECK(d.warnings.empty());  // every provider named is one of rules/providers.tsv
    CHECK(rules->rules.size() == 22);
    CHECK(rules->files == std::vector<std::string>{shipped_path});

    const ShapingRule* g = find(*rules, "google-rate");
    REQUIRE(g);
    CHECK(g->origin == fmt::format("{}:{}", shipped_path, line_of(shipped_path, "'google-rate'")));
    CHECK(g->providers == std::vector<std::string>{"google"});
    CHECK(g->classes == std::vector<std::string>{"rate_limited"});
    CHECK(g->threshold == 3);
    CHECK(g->window_s == 300);
    CHECK(g->hold_s == 1200);
    CHECK(g->action.rate_factor == 0.7);
    CHECK(g->action.connections_factor == 0.5);
    CHECK(g->action.suspend_s == 0);
    REQUIRE(g->reply);
    CHECK(RE2::PartialMatch("421 4.7.28 Our system has detected an UNUSUAL RATE", *g->reply));
    CHECK_FALSE(RE2::PartialMatch("450 4.2.1 The user is receiving mail at a rate", *g->reply));

    const ShapingRule* y = find(*rules, "yahoo-reputation");
    REQUIRE(y);
    CHECK(y->origin ==
          fmt::format("{}:{}", shipped_path, line_of(shipped_path, "'yahoo-reputation'")));
    CHECK(y->action.suspend_s == 3600);
    CHECK(y->escalate == 2);
    CHECK(y->max_level == 3);
    CHECK(y->on_deferred);
    CHECK(y->on_connection);
    CHECK_FALSE(y->on_bounced);

    const ShapingRule* gd = find(*rules, "google-domain-reputation");
    REQUIRE(gd);
    CHECK(gd->scope == ShapingRule::Scope::domain);
    const ShapingRule* mr = find(*rules, "microsoft-reputation");
    REQUIRE(mr);
    CHECK(mr->action.connections == 1);
    const ShapingRule* any = find(*rules, "any-block");
    REQUIRE(any);
    CHECK(any->providers.empty());
    CHECK(any->on_bounced);
    CHECK(any->on_connection);  // a 5xx at the greeting
    CHECK(any->reply_pattern == "^5");
    CHECK_FALSE(any->on_deferred);
    CHECK(any->action.alert);
}

TEST_CASE("the shipped rules catch the providers' throttling replies as Kasi classifies them") {
    auto rules = shipped_rules();
    std::string err;
    auto classifier = Classifier::load_shipped(err);
    REQUIRE(classifier);
    struct Case {
        int code;
        const char* enhanced;
        const char* text;
        const char* host;
        const char* command;
        const char* rule;      // must match
        const char* not_rule;  // must not match ("" = no such check)
    };
    const Case cases[] = {
        {421, "4.7.28",
         "[192.0.2.1] Our system has detected an unusual rate of unsolicited mail "
         "originating from your IP address. To protect our users from spam, mail "
         "sent from your IP address has been temporarily rate limited.",
         "gmail-smtp-in.l.google.com", "RCPT", "google-rate", "google-reputation"},
        {450, "4.2.1",
         "The user you are trying to contact is receiving mail at a rate that "
         "prevents additional messages from being delivered.",
         "gmail-smtp-in.l.google.com", "RCPT", "any-rate", "google-rate"},
        {421, "4.7.0",
         "[192.0.2.1] This message is suspicious due to the very low reputation "
         "of the sending IP address. To protect our users from spam, mail sent "
         "from your IP address has been temporarily rate limited.",
         "gmail-smtp-in.l.google.com", "DATA", "google-reputation", "google-domain-reputation"},
        {421, "4.7.0",
         "This message is suspicious due to the very low reputation of the "
         "sending domain. To best protect our users from spam, the message has "
         "been blocked.",
         "gmail-smtp-in.l.google.com", "DATA", "google-domain-reputation", ""},
        {550, "5.7.1",
         "[192.0.2.1] Our system has detected that this message is likely "
         "unsolicited mail. To reduce the amount of spam sent to Gmail, this "
         "message has been blocked.",
         "gmail-smtp-in.l.google.com", "DATA", "google-block", "google-reputation"},
        {451, "4.7.650",
         "The mail server [192.0.2.1] has been temporarily rate limited due to "
         "IP reputation.",
         "hotmail-com.olc.protection.outlook.com", "MAIL", "microsoft-reputation", ""},
        {451, "4.7.500", "Server busy. Please try again later from [192.0.2.1]. (S77714)",
         "hotmail-com.olc.protection.outlook.com", "RCPT", "microsoft-rate", ""},
        {451, "4.7.652",
         "The mail server [192.0.2.1] has exceeded the maximum number of "
         "connections. (S3115)",
         "hotmail-com.olc.protection.outlook.com", "CONNECT", "microsoft-rate", ""},
        {421, "4.7.0",
         "The mail server [192.0.2.1] has exceeded maximum number of messages per "
         "connection.",
         "hotmail-com.olc.protection.outlook.com", "MAIL", "microsoft-per-connection", ""},
        {550, "5.7.606", "Access denied, banned sending IP [192.0.2.1].",
         "hotmail-com.olc.protection.outlook.com", "RCPT", "microsoft-block", ""},
        {421, "4.7.0",
         "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
         "volume or user complaints - 4.16.55.1",
         "mta7.am0.yahoodns.net", "MAIL", "yahoo-reputation", "yahoo-block"},
        {421, "4.7.0",
         "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
         "volume or user complaints - 4.16.55.1",
         "mta7.am0.yahoodns.net", "CONNECT", "yahoo-reputation", "yahoo-block"},
        {421, "", "Max message per connection reached, closing transmission channel",
         "mta7.am0.yahoodns.net", "MAIL", "yahoo-rate", ""},
        {553, "5.7.2",
         "[TSS09] All messages from 192.0.2.1 will be permanently deferred; "
         "Retrying will NOT succeed.",
         "mta7.am0.yahoodns.net", "MAIL", "yahoo-block", "yahoo-reputation"},
        {421, "4.7.0", "[HCM1] Your mail from 192.0.2.1 was deferred.", "mx01.mail.icloud.com",
         "MAIL", "apple-deferred", ""},
        {451, "4.7.1", "[BS02] Temporary server error. Please try again later.",
         "mx01.mail.icloud.com", "RCPT", "apple-reputation", ""},
        {450, "4.7.1", "Message rejected due to excessive volume", "mx01.mail.icloud.com", "RCPT",
         "apple-rate", ""},
        {550, "5.7.0", "Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.1",
         "mx01.mail.icloud.com", "CONNECT", "apple-block", ""},
        {421, "",
         "resimta-po-01v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. "
         "Please see http://postmaster.comcast.net/smtp-error-codes.php#RL000001",
         "mx1a1.comcast.net", "CONNECT", "comcast-rl", "comcast-block"},
        {554, "",
         "resimta-ch2-01v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. "
         "Please see http://postmaster.comcast.net/smtp-error-codes.php#BL000000",
         "mx1a1.comcast.net", "CONNECT", "comcast-block", ""},
        {451, "4.7.1", "Client host [192.0.2.1] deferred due to poor reputation", "mx.other.test",
         "MAIL", "any-reputation", "google-reputation"},
        {554, "5.7.1",
         "Service unavailable; Client host [192.0.2.1] blocked using "
         "zen.spamhaus.org",
         "mx.other.test", "RCPT", "any-block", ""},
    };
    for (const auto& k : cases) {
        ClassifyInput in;
        in.code = k.code;
        in.enhanced = k.enhanced;
        in.text = k.text;
        in.remote_host = k.host;
        in.command = k.command;
        Classification c = classifier->classify(in);
        std::string reply = fmt::format("{} {} {}", k.code, k.enhanced, k.text);
        // a refusal at the greeting is a `connection` outcome whatever its code
        bool connection = std::string_view(k.command) == "CONNECT", bounced = k.code >= 500;
        // as the engine matches (core/shaping/shaping_rules.h): all that is given must hold
        auto matches = [&](const ShapingRule& r) {
            bool kind = connection ? r.on_connection : bounced ? r.on_bounced : r.on_deferred;
            bool provider = r.providers.empty() || has(r.providers, c.provider);
            bool cls = r.classes.empty() || has(r.classes, c.cls);
            bool text = !r.reply || RE2::PartialMatch(reply, *r.reply);
            return kind && provider && cls && text;
        };
        INFO(reply << " -> " << c.cls << " at " << c.provider);
        const ShapingRule* want = find(*rules, k.rule);
        REQUIRE(want);
        CHECK(matches(*want));
        if (*k.not_rule) {
            const ShapingRule* unwanted = find(*rules, k.not_rule);
            REQUIRE(unwanted);
            CHECK_FALSE(matches(*unwanted));
        }
    }
}

TEST_CASE("config/adaptive.lua changes, removes and adds rules") {
    Config c;
    c.write("adaptive.lua", R"(local a = require('kasi.adaptive').defaults()
a:set('google-rate', { threshold = 5 })
a:remove('any-rate')
a:add(rule{ name = 'acme-alert', providers = { 'microsoft' }, classes = { 'policy' },
            action = { alert = true } })
a:set('yahoo-reputation', { action = { suspend = '2h', rate_factor = false }, reply = 'TSS0' })
a:get('microsoft-rate').threshold = 7
return a
)");
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors));
    REQUIRE(rules);
    CHECK(rules->rules.size() == 22);
    CHECK(rules->files == std::vector<std::string>{shipped_path, c.path("adaptive.lua")});

    const ShapingRule* g = find(*rules, "google-rate");
    REQUIRE(g);
    CHECK(g->threshold == 5);
    CHECK(g->origin == c.path("adaptive.lua") + ":2");  // where it was changed
    CHECK(g->action.rate_factor == 0.7);                // the rest is the shipped rule's
    CHECK(g->providers == std::vector<std::string>{"google"});

    CHECK_FALSE(find(*rules, "any-rate"));

    const ShapingRule* acme = find(*rules, "acme-alert");
    REQUIRE(acme);
    CHECK(acme->origin == c.path("adaptive.lua") + ":4");
    CHECK(acme->action.alert);
    CHECK(acme->threshold == 3);  // ShapingRule's defaults for what is not given
    CHECK(acme->window_s == 300);
    CHECK(acme->on_deferred);
    CHECK_FALSE(acme->on_bounced);
    CHECK(rules->rules.back().name == "acme-alert");  // add() appends

    const ShapingRule* y = find(*rules, "yahoo-reputation");
    REQUIRE(y);
    CHECK(y->action.suspend_s == 7200);
    CHECK(y->action.rate_factor == 1);           // false: back to the default
    CHECK(y->action.connections_factor == 0.5);  // action fields not named are kept
    CHECK(y->reply_pattern == "TSS0");

    const ShapingRule* m = find(*rules, "microsoft-rate");
    REQUIRE(m);
    CHECK(m->threshold == 7);  // a plain edit keeps the rule's origin
    CHECK(m->origin ==
          fmt::format("{}:{}", shipped_path, line_of(shipped_path, "'microsoft-rate'")));
}

TEST_CASE("a config may build its own set, and require its own modules from DIR/lua") {
    Config c;
    std::filesystem::create_directories(c.dir.path + "/lua");
    std::ofstream(c.dir.path + "/lua/myrules.lua")
        << "return { pool = function(p)\n"
           "  local r = rule({ name = 'to-' .. p, providers = { 'google' }, action = { pool = p } "
           "}, 2)\n"
           "  return r -- not `return rule(...)`: a tail call has no frame of its own\n"
           "end }\n";
    c.write("egress.ini", "[source:a]\naddress=127.0.0.1\n[pool:warm]\na=1\n");
    c.write("adaptive.lua", R"(local my = require('myrules')
return require('kasi.adaptive').set{
  my.pool('warm'),
}
)");
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors));
    REQUIRE(rules);
    REQUIRE(rules->rules.size() == 1);
    CHECK(rules->rules[0].name == "to-warm");
    CHECK(rules->rules[0].action.pool == "warm");
    CHECK(rules->rules[0].origin == c.path("adaptive.lua") + ":3");  // rule(t, 2): the caller
}

TEST_CASE("every kind of error names the file and the line") {
    struct Case {
        const char* rule;  // written on line 2
        const char* error;
    };
    const Case cases[] = {
        {"rule{ name = 'r', action = { alert = true }, thresold = 3 }",
         "adaptive rule 'r': thresold: unknown key"},
        {"rule{ name = 'r', action = { alert = true, bogus = 1 } }",
         "adaptive rule 'r': action.bogus: unknown key"},
        {"rule{ name = 'r', action = { alert = true }, threshold = '3' }",
         "threshold: must be a whole number from 1 to 10000, not '3'"},
        {"rule{ name = 'r', action = { alert = true }, threshold = 0 }",
         "threshold: must be a whole number from 1 to 10000, not 0"},
        {"rule{ name = 'r', action = { alert = true }, threshold = 2.5 }", "threshold: must be"},
        {"rule{ name = 'r', action = { alert = true }, classes = { 'ratelimited' } }",
         "classes: unknown class 'ratelimited'"},
        {"rule{ name = 'r', action = { alert = true }, classes = 'rate_limited' }",
         "classes: must be a list of strings"},
        {"rule{ name = 'r', action = { alert = true }, outcomes = { 'deferred', 'later' } }",
         "outcomes: unknown outcome 'later'"},
        {"rule{ name = 'r', action = { alert = true }, outcomes = {} }",
         "outcomes: must name at least one"},
        {"rule{ name = 'r', action = { alert = true }, scope = 'ip' }",
         "scope: must be 'source' or 'domain'"},
        {"rule{ name = 'r', action = { alert = true }, reply = '4.7.(28' }",
         "reply: bad regular expression /4.7.(28/: missing )"},
        {"rule{ name = 'r', action = { alert = true }, window = '10w' }",
         "window: must be a duration from 1s to 7d"},
        {"rule{ name = 'r', action = { alert = true }, hold = 1.5 }", "hold: must be a duration"},
        {"rule{ name = 'r', action = { alert = true }, recover = 1 }",
         "recover: must be a number more than 1 and at most 10, not 1"},
        {"rule{ name = 'r', action = { alert = true }, escalate = 11 }",
         "escalate: must be a number of at least 1 and at most 10"},
        {"rule{ name = 'r', action = { alert = true }, max_level = 0 }",
         "max_level: must be a whole number from 1 to 10"},
        {"rule{ name = 'r', action = { rate = '5/week' } }", "action.rate: must be a rate"},
        {"rule{ name = 'r', action = { rate_factor = 1.5 } }",
         "action.rate_factor: must be a number more than 0 and at most 1, not 1.5"},
        {"rule{ name = 'r', action = { connections_factor = 0 } }",
         "action.connections_factor: must be a number more than 0"},
        {"rule{ name = 'r', action = { connections = 0 } }",
         "action.connections: must be a whole number from 1"},
        {"rule{ name = 'r', action = { messages_per_connection = -1 } }",
         "action.messages_per_connection: must be a whole number from 1"},
        {"rule{ name = 'r', action = { suspend = 'soon' } }", "action.suspend: must be a duration"},
        {"rule{ name = 'r', action = { alert = 'yes' } }", "action.alert: must be true or false"},
        {"rule{ name = 'r', action = { rate = 1, rate_factor = 0.5 } }",
         "action: give rate_factor or rate, not both"},
        {"rule{ name = 'r', action = { connections = 1, connections_factor = 0.5 } }",
         "action: give connections_factor or connections, not both"},
        {"rule{ name = 'r', action = { rate_factor = 1, alert = false } }",
         "adaptive rule 'r': action: does nothing"},
        {"rule{ name = 'r' }", "adaptive rule 'r': action: does nothing"},
        {"rule{ name = 'r', action = 'suspend' }", "action: must be a table"},
        {"rule{ name = 'r', action = { pool = 'nowhere' } }",
         "action.pool: egress.ini has no [pool:nowhere]"},
        {"rule{ name = 'r', scope = 'domain', action = { pool = 'warm' } }",
         "action.pool: applies to scope 'source' only"},
        {"rule{ action = { alert = true } }", "adaptive rule: name: missing"},
        {"rule{ name = 'has space', action = { alert = true } }", "name: must be 1 to 64"},
        {"rule{ 'r', action = { alert = true } }", "write `key = value` pairs"},
        {"rule{ name = 'google-rate', action = { alert = true } }",
         "adaptive rule 'google-rate': name: used twice (first at "},
        {"a:set('no-such-rule', { threshold = 2 })", "adaptive: no rule named 'no-such-rule'"},
        {"a:remove('no-such-rule')", "adaptive: no rule named 'no-such-rule'"},
        {"local x = nil + 1", "attempt to perform arithmetic"},
        {"local x = = 1", "unexpected symbol near '='"},
        {"while true do end", "instruction budget exceeded"},
        {"rule(5)", "bad argument #1 to 'rule'"},
        {"require('no.such.module')", "module 'no.such.module' not found"},
        {"os.execute('true')", "attempt to call field 'execute'"},
    };
    for (const auto& k : cases) {
        Config c;
        c.write("egress.ini", "[source:a]\naddress=127.0.0.1\n[pool:warm]\na=1\n");
        std::string stmt = std::string_view(k.rule).starts_with("rule{")
                               ? fmt::format("a.rules[#a.rules + 1] = {}", k.rule)
                               : k.rule;
        c.write("adaptive.lua",
                "local a = require('kasi.adaptive').defaults()\n" + stmt + "\nreturn a\n");
        Diagnostics d;
        auto rules = c.load(d);
        INFO(stmt << "\n" << all(d.errors));
        CHECK_FALSE(rules);
        std::string at = c.path("adaptive.lua") + ":2: ";
        bool found = false;
        for (const auto& e : d.errors) found |= e.starts_with(at) && e.find(k.error) != e.npos;
        CHECK(found);
    }
}

TEST_CASE("a file that takes too much memory or time is an error, not a hang") {
    struct Case {
        const char* limits;  // lua.ini [main]
        const char* text;
        const char* error;
    };
    const Case cases[] = {
        {"run_ms=600000\n", "local t = {}\nfor i = 1, 1e9 do t[i] = ('x'):rep(1e6) .. i end\n",
         "adaptive.lua: not enough memory"},
        {"run_ms=50\ninstructions=1000000000000\n", "local n = 0\nwhile true do n = n + 1 end\n",
         "adaptive.lua:2: ran for more than 50 ms without yielding"},
    };
    for (const auto& [limits, text, error] : cases) {
        Config c;
        c.write("lua.ini",
                fmt::format("[main]\nlibrary_path[]={}/lua\n{}", KASI_SOURCE_ROOT, limits));
        c.write("adaptive.lua", text);
        Diagnostics d;
        CHECK_FALSE(c.load(d));
        INFO(all(d.errors));
        REQUIRE(d.errors.size() == 1);
        CHECK(d.errors[0].find(error) != std::string::npos);
    }
}

TEST_CASE("errors of the whole set name the file's last line") {
    const std::pair<const char*, const char*> cases[] = {
        {"return 5\n", "adaptive.lua:1: must return a rule set"},
        {"local a = require('kasi.adaptive').defaults()\n"
         "a.rules[#a.rules + 1] = { name = 'plain', action = { alert = true } }\n"
         "return a\n\n",
         "adaptive.lua:3: rules[23] is a table not made with rule{...}"},
        {"local a = require('kasi.adaptive').defaults()\na.rules[3] = nil\nreturn a\n",
         "adaptive.lua:3: rules: must be a list, without holes"},
        {"return { rules = {}, extra = 1 }\n", "adaptive.lua:1: the returned set may have only"},
        {"return { }\n", "adaptive.lua:1: the returned set has no list `rules`"},
    };
    for (const auto& [text, error] : cases) {
        Config c;
        c.write("adaptive.lua", text);
        Diagnostics d;
        INFO(text);
        CHECK_FALSE(c.load(d));
        INFO(all(d.errors));
        bool found = false;
        for (const auto& e : d.errors) found |= e.find(error) != std::string::npos;
        CHECK(found);
    }
}

TEST_CASE("an unknown provider is a warning with the line, not an error") {
    Config c;
    c.write("adaptive.lua", R"(return require('kasi.adaptive').set{
  rule{ name = 'r', providers = { 'gogle' }, action = { alert = true } },
})");
    Diagnostics d;
    CHECK(c.load(d));
    REQUIRE(d.warnings.size() == 1);
    CHECK(d.warnings[0].starts_with(c.path("adaptive.lua") +
                                    ":2: adaptive rule 'r': providers: 'gogle' is no provider"));
}

TEST_CASE("the plugin hands the rules to the generation, and nothing when they are wrong") {
    Config c;
    Settings s;
    {
        HookTable table;
        Diagnostics d;
        CHECK(make_adaptive_plugin(ConfigDir(c.config), s, d, table, 0));
        REQUIRE(table.shaping_rules());
        CHECK(table.shaping_rules()->rules.size() == 22);
    }
    c.write("adaptive.lua",
            "local a = require('kasi.adaptive').defaults()\n"
            "a:set('google-rate', { window = 'never' })\nreturn a\n");
    HookTable table;
    Diagnostics d;
    CHECK_FALSE(make_adaptive_plugin(ConfigDir(c.config), s, d, table, 0));
    CHECK_FALSE(table.shaping_rules());
    CHECK_FALSE(d.ok());
}

// The per-tenant circuit breakers' thresholds (breaker_reader.h) ------------------------------

TEST_CASE("the shipped breaker settings load into the policy, on every set") {
    auto check_shipped = [](const BreakerPolicy& b) {
        CHECK(b.automatic);
        CHECK(b.defaults.window_s == 3600);
        CHECK(b.defaults.min_attempts == 100);
        CHECK(b.defaults.hard_bounce_rate == 0.05);
        CHECK(b.defaults.complaint_rate == 0.003);
        CHECK(b.defaults.block_rate == 0.2);
        CHECK(b.defaults.open_s == 1800);
        CHECK(b.defaults.probe == 0.1);
        CHECK(b.defaults.probe_attempts == 20);
        CHECK(b.tenants.empty());
    };
    check_shipped(shipped_rules()->breaker);

    // a set of one's own starts with the shipped breaker too
    Config c;
    c.write("adaptive.lua", "return require('kasi.adaptive').set{}\n");
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors));
    REQUIRE(rules);
    check_shipped(rules->breaker);
}

TEST_CASE("breaker settings are read from the file, each of them") {
    Config c;
    c.write("adaptive.lua", R"(local a = require('kasi.adaptive').defaults()
a:set_breaker{ window = '10m', min_attempts = 50, hard_bounce_rate = 0.08, complaint_rate = 0.001,
           block_rate = 0.5, open = '2h', probe = 0.25, probe_attempts = 5 }
return a
)");
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors));
    REQUIRE(rules);
    const BreakerPolicy& b = rules->breaker;
    CHECK(b.automatic);  // not given: kept from the shipped table
    CHECK(b.defaults.window_s == 600);
    CHECK(b.defaults.min_attempts == 50);
    CHECK(b.defaults.hard_bounce_rate == 0.08);
    CHECK(b.defaults.complaint_rate == 0.001);
    CHECK(b.defaults.block_rate == 0.5);
    CHECK(b.defaults.open_s == 7200);
    CHECK(b.defaults.probe == 0.25);
    CHECK(b.defaults.probe_attempts == 5);
    CHECK(rules->rules.size() == 22);  // the rules are untouched
}

TEST_CASE("a tenant's override inherits what it does not give") {
    Config c;
    c.write("adaptive.lua", R"(local a = require('kasi.adaptive').defaults()
a:tenant('acme', { hard_bounce_rate = 0.1 })
a:tenant('acme', { probe_attempts = 40 })
a:tenant('gone', { open = '1h' })
a:tenant('gone', false)
a.breaker.tenants['beta.example'] = { window = '5m', complaint_rate = 0.01 }
a:set_breaker{ open = '1h', min_attempts = 200 }
return a
)");
    Diagnostics d;
    auto rules = c.load(d);
    INFO(all(d.errors));
    REQUIRE(rules);
    const BreakerPolicy& b = rules->breaker;
    CHECK(b.tenants.size() == 2);
    CHECK_FALSE(b.tenants.count("gone"));

    const BreakerLimits& acme = b.limits_for("acme");
    CHECK(acme.hard_bounce_rate == 0.1);
    CHECK(acme.probe_attempts == 40);  // a second call merges into the first
    CHECK(acme.open_s == 3600);        // the defaults as changed, whichever line comes first
    CHECK(acme.min_attempts == 200);
    CHECK(acme.complaint_rate == 0.003);
    CHECK(acme.window_s == 3600);

    const BreakerLimits& beta = b.limits_for("beta.example");
    CHECK(beta.window_s == 300);
    CHECK(beta.complaint_rate == 0.01);
    CHECK(beta.hard_bounce_rate == 0.05);
    CHECK(beta.open_s == 3600);

    const BreakerLimits& other = b.limits_for("other");
    CHECK(other.hard_bounce_rate == 0.05);
    CHECK(other.open_s == 3600);
    CHECK(other.min_attempts == 200);
    CHECK(b.defaults.probe_attempts == 20);
}

TEST_CASE("enabled = false stops automatic tripping; a set without a breaker has none") {
    const std::pair<const char*, bool> cases[] = {
        {"local a = require('kasi.adaptive').defaults()\n"
         "a:set_breaker{ enabled = false, hard_bounce_rate = 0.2 }\n"
         "a:tenant('acme', { probe = 0.5 })\nreturn a\n",
         true},
        {"local a = require('kasi.adaptive').defaults()\n"
         "a.breaker.enabled = false\na.breaker.hard_bounce_rate = 0.2\n"
         "a.breaker.tenants.acme = { probe = 0.5 }\nreturn a\n",
         true},
        {"local a = require('kasi.adaptive').defaults()\n"
         "return { rules = a.rules }\n",
         false},
    };
    for (const auto& [text, has_table] : cases) {
        Config c;
        c.write("adaptive.lua", text);
        Diagnostics d;
        auto rules = c.load(d);
        INFO(text << all(d.errors));
        REQUIRE(rules);
        CHECK(rules->rules.size() == 22);
        CHECK_FALSE(rules->breaker.automatic);
        if (has_table) {  // the thresholds are still read (an operator's pause uses none)
            CHECK(rules->breaker.defaults.hard_bounce_rate == 0.2);
            CHECK(rules->breaker.limits_for("acme").probe == 0.5);
            CHECK(rules->breaker.limits_for("acme").hard_bounce_rate == 0.2);
        }
    }
}

TEST_CASE("every kind of breaker error names the line of the call") {
    struct Case {
        const char* stmt;  // written on line 2
        const char* error;
    };
    const Case cases[] = {
        {"a:set_breaker{ windw = '1h' }", "adaptive breaker: windw: unknown key (known: enabled, "},
        {"a:set_breaker{ enabled = 'no' }", "adaptive breaker: enabled: must be true or false"},
        {"a:set_breaker{ window = '2h' }",
         "adaptive breaker: window: must be a duration from 1m to 1h"},
        {"a:set_breaker{ window = 30 }", "window: must be a duration from 1m to 1h"},
        {"a:set_breaker{ window = 'soon' }", "window: must be a duration from 1m to 1h"},
        {"a:set_breaker{ window = '90s' }",
         "window: must be whole minutes (the breaker counts in one-minute buckets), not '90s'"},
        {"a:set_breaker{ min_attempts = 0 }",
         "min_attempts: must be a whole number from 1 to 1000000, not 0"},
        {"a:set_breaker{ min_attempts = 2.5 }", "min_attempts: must be a whole number"},
        {"a:set_breaker{ min_attempts = 1e7 }", "min_attempts: must be a whole number"},
        {"a:set_breaker{ hard_bounce_rate = 0 }",
         "hard_bounce_rate: must be a number more than 0 and at most 1, not 0"},
        {"a:set_breaker{ complaint_rate = 1.5 }",
         "complaint_rate: must be a number more than 0 and at most 1, not 1.5"},
        {"a:set_breaker{ block_rate = '20%' }",
         "block_rate: must be a number more than 0 and at most 1, not '20%'"},
        {"a:set_breaker{ open = '2d' }",
         "adaptive breaker: open: must be a duration from 1m to 1d"},
        {"a:set_breaker{ open = '30s' }", "open: must be a duration from 1m to 1d"},
        {"a:set_breaker{ probe = 0 }", "probe: must be a number more than 0 and at most 1"},
        {"a:set_breaker{ probe_attempts = 10001 }",
         "probe_attempts: must be a whole number from 1 to 10000, not 10001"},
        {"a:set_breaker{ tenants = 'acme' }",
         "adaptive breaker: tenants: must be a table of tenants"},
        {"a:set_breaker{ tenants = { acme = 5 } }",
         "adaptive breaker: tenants.acme: must be a table such as { hard_bounce_rate = 0.1 }, "
         "not a number"},
        {"a:set_breaker{ tenants = { { probe = 0.5 } } }",
         "adaptive breaker: tenants: write `name = { ... }`"},
        {"a:tenant('acme', { hard_bounce_rate = 2 })",
         "adaptive breaker: tenants.acme.hard_bounce_rate: must be a number more than 0 and at "
         "most 1, not 2"},
        {"a:tenant('acme', { window = '61m' })", "tenants.acme.window: must be a duration"},
        {"a:tenant('acme', { enabled = false })",
         "adaptive breaker: tenants.acme.enabled: unknown key (known: window, "},
        {"a:tenant('acme', { tenants = {} })", "tenants.acme.tenants: unknown key"},
        {"a:tenant('acme', { 0.5 })", "adaptive breaker: tenants.acme: write `key = value` pairs"},
        {"a:tenant('has space', { probe = 0.5 })",
         "adaptive breaker: tenants: 'has space' is no tenant name"},
        {"a:tenant('', { probe = 0.5 })", "adaptive breaker: tenants: '' is no tenant name"},
        {"a:tenant(5, { probe = 0.5 })", "adaptive: tenant(name, fields): name must be a string"},
        {"a:tenant('acme', 0.1)", "adaptive: tenant(name, fields): fields must be a table"},
        {"a:set_breaker(false)", "adaptive: set_breaker(fields): fields must be a table"},
    };
    for (const auto& k : cases) {
        Config c;
        c.write("adaptive.lua", std::string("local a = require('kasi.adaptive').defaults()\n") +
                                    k.stmt + "\n\nreturn a\n");
        Diagnostics d;
        auto rules = c.load(d);
        INFO(k.stmt << "\n" << all(d.errors));
        CHECK_FALSE(rules);
        std::string at = c.path("adaptive.lua") + ":2: ";
        bool found = false;
        for (const auto& e : d.errors) found |= e.starts_with(at) && e.find(k.error) != e.npos;
        CHECK(found);
    }
}

TEST_CASE("breaker errors without a call to date them name the file's last line") {
    const std::pair<const char*, const char*> cases[] = {
        // the shipped table, edited in place: no line of this file is recorded for it
        {"local a = require('kasi.adaptive').defaults()\na.breaker.open = 'later'\nreturn a\n\n",
         "adaptive.lua:3: adaptive breaker: open: must be a duration from 1m to 1d"},
        {"local a = require('kasi.adaptive').defaults()\n"
         "a.breaker.tenants.acme = { probe = 0 }\nreturn a\n",
         "adaptive.lua:3: adaptive breaker: tenants.acme.probe: must be a number more than 0"},
        {"return { rules = {}, breaker = 5 }\n",
         "adaptive.lua:1: adaptive breaker: must be a table such as"},
        {"return { rules = {}, breaker = { enabled = true, pause = '1h' } }\n",
         "adaptive.lua:1: adaptive breaker: pause: unknown key"},
        {"return { rules = {}, brake = {} }\n",
         "adaptive.lua:1: the returned set may have only the keys `rules` and `breaker`"},
        // a tenant set by a call keeps that call's line, edited later or not
        {"local a = require('kasi.adaptive').defaults()\n"
         "a:tenant('acme', { probe = 0.5 })\n"
         "a.breaker.tenants.acme.probe = 2\nreturn a\n",
         "adaptive.lua:2: adaptive breaker: tenants.acme.probe: must be a number"},
        // a tenant given as plain data in a dated breaker table: the breaker's line
        {"local a = require('kasi.adaptive').defaults()\n\n"
         "a:set_breaker{ tenants = { acme = { open = 'x' } } }\nreturn a\n",
         "adaptive.lua:3: adaptive breaker: tenants.acme.open: must be a duration"},
    };
    for (const auto& [text, error] : cases) {
        Config c;
        c.write("adaptive.lua", text);
        Diagnostics d;
        INFO(text);
        CHECK_FALSE(c.load(d));
        INFO(all(d.errors));
        bool found = false;
        for (const auto& e : d.errors) found |= e.find(error) != std::string::npos;
        CHECK(found);
    }
}

TEST_CASE("the plugin hands the breaker policy to the generation with the rules") {
    Config c;
    c.write("adaptive.lua",
            "local a = require('kasi.adaptive').defaults()\n"
            "a:tenant('acme', { complaint_rate = 0.01 })\nreturn a\n");
    Settings s;
    HookTable table;
    Diagnostics d;
    CHECK(make_adaptive_plugin(ConfigDir(c.config), s, d, table, 0));
    REQUIRE(table.shaping_rules());
    CHECK(table.shaping_rules()->breaker.automatic);
    CHECK(table.shaping_rules()->breaker.limits_for("acme").complaint_rate == 0.01);
}
