// Haraka's INI dialect (core/config/ini.h): config files are operator input, but they are
// also written by tools and reloaded while the server runs, so a bad file must give
// problems, never a crash. Properties: [main] comes first and always exists; every entry
// has a line number inside the file; lookups find what the sections hold.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/ini.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    kasi::Ini ini = kasi::Ini::parse(text, "fuzz.ini");
    FUZZ_CHECK(!ini.sections.empty() && ini.sections[0].name == "main");
    FUZZ_CHECK(ini.section("main") != nullptr);
    int lines = 1;  // as split_lines counts them: CRLF, CR or LF ends a line
    for (size_t i = 0; i < text.size(); ++i)
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')))
            ++lines;
    for (const auto& sec : ini.sections) {
        FUZZ_CHECK(ini.section(sec.name) != nullptr);
        for (const auto& e : sec.entries) {
            FUZZ_CHECK(e.line >= 1 && e.line <= lines);
            FUZZ_CHECK(sec.find(e.key) != nullptr);
            (void)kasi::ini_infer_type(e.value);
            (void)kasi::ini_is_truthy(e.value);
            for (const auto& a : e.array) (void)kasi::ini_infer_type(a);
        }
    }
    for (const auto& p : ini.problems) FUZZ_CHECK(!p.empty());
    return 0;
}
