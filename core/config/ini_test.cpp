// INI dialect: data-driven cases in test/data/ini, plus typed access (booleans declared by
// the consumer, ranges) and flat-file types.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/config/config_dir.h"
#include "core/config/ini.h"

using namespace kasi;

namespace {

std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string dump(const Ini& ini) {
    std::string out;
    for (const auto& s : ini.sections)
        for (const auto& e : s.entries) {
            std::string type, value;
            if (e.is_array) {
                type = "array";
                for (size_t i = 0; i < e.array.size(); ++i) value += (i ? "," : "") + e.array[i];
            } else {
                switch (ini_infer_type(e.value)) {
                    case IniType::none:
                        type = "none";
                        break;
                    case IniType::integer:
                        type = "int";
                        break;
                    case IniType::floating:
                        type = "float";
                        break;
                    case IniType::string:
                        type = "string";
                        break;
                }
                value = e.value.value_or("");
            }
            out += s.name + "|" + e.key + "|" + type + "|" + value + "\n";
        }
    for (const auto& p : ini.problems) {
        auto a = p.find(':');
        auto b = p.find(':', a + 1);
        out += "problem|" + p.substr(a + 1, b - a - 1) + "\n";
    }
    return out;
}

}  // namespace

TEST_CASE("INI conformance cases (test/data/ini)") {
    std::string dir = std::string(KASI_SOURCE_ROOT) + "/test/data/ini";
    DIR* d = opendir(dir.c_str());
    REQUIRE(d != nullptr);
    int cases = 0;
    while (auto* ent = readdir(d)) {
        std::string n = ent->d_name;
        if (n.size() < 5 || n.substr(n.size() - 4) != ".ini") continue;
        std::string base = dir + "/" + n.substr(0, n.size() - 4);
        Ini ini = Ini::parse(slurp(base + ".ini"), n);
        INFO("case " << n);
        CHECK(dump(ini) == slurp(base + ".expected"));
        ++cases;
    }
    closedir(d);
    CHECK(cases >= 2);
}

TEST_CASE("booleans are declared by the consumer") {
    Ini ini = Ini::parse("a=yes\nb=Off\nc\nd=maybe\n[s]\ne=ENABLED\n");
    Diagnostics d;
    IniReader r(ini, d);
    CHECK(r.get_bool("main", "a", false));
    CHECK_FALSE(r.get_bool("main", "b", true));
    CHECK_FALSE(r.get_bool("main", "c", true));  // valueless: false, as haraka-config
    CHECK(r.get_bool("main", "missing", true));  // default when absent
    CHECK_FALSE(r.get_bool("main", "d", true));
    CHECK(d.warnings.size() == 1);  // "maybe" is not a boolean
    CHECK(r.get_bool("s", "e", false));
}

TEST_CASE("integers are range-checked with file:line errors") {
    Ini ini = Ini::parse("x=12\ny=abc\nz=99999\n", "t.ini");
    Diagnostics d;
    IniReader r(ini, d);
    CHECK(r.get_int("main", "x", 0, 0, 100) == 12);
    CHECK(r.get_int("main", "y", 7, 0, 100) == 7);
    CHECK(r.get_int("main", "z", 5, 0, 100) == 5);
    REQUIRE(d.errors.size() == 2);
    CHECK(d.errors[0].rfind("t.ini:2:", 0) == 0);
    CHECK(d.errors[1].rfind("t.ini:3:", 0) == 0);
}

TEST_CASE("unknown keys warn with their line") {
    Ini ini = Ini::parse("[relay]\nacl=1\nacll=1\n", "relay.ini");
    Diagnostics d;
    IniReader r(ini, d);
    r.check_known("relay", {"acl"});
    REQUIRE(d.warnings.size() == 1);
    CHECK(d.warnings[0].find("relay.ini:3:") == 0);
    CHECK(d.warnings[0].find("acll") != std::string::npos);
}

TEST_CASE("flat files: value, list, data, and names that escape the directory") {
    char tmpl[] = "/tmp/kasi-cfg-XXXXXX";
    std::string root = mkdtemp(tmpl);
    std::ofstream(root + "/me") << "\n# comment\n  mx.example.com  \nsecond\n";
    std::ofstream(root + "/host_list") << "a.example\n\n; c\n# c\n b.example \n";
    ConfigDir cfg(root);
    Diagnostics d;
    auto me = cfg.value("me", d);
    REQUIRE(me);
    CHECK(me->text == "mx.example.com");
    CHECK(me->line == 3);
    auto l = cfg.list("host_list", d);
    REQUIRE(l.size() == 2);
    CHECK(l[1].text == "b.example");
    auto data = cfg.data("host_list", d);
    REQUIRE(data);
    CHECK(data->size() == 5);
    CHECK_FALSE(cfg.path_of("../etc/passwd"));
    CHECK_FALSE(cfg.path_of("a/../../x"));
    CHECK(cfg.path_of("a/../x"));
    CHECK(cfg.path_of("/etc/services"));
    CHECK_FALSE(cfg.value("missing", d));
    CHECK(d.ok());
    std::filesystem::remove_all(root);
}
