#include "core/classify/rules_dir.h"

#include <sys/stat.h>

#include <cstdlib>

#include "core/classify/rule_file.h"

#ifndef KASI_RULES_DIR
#define KASI_RULES_DIR "/usr/share/kasi/rules"
#endif
#ifndef KASI_SOURCE_RULES_DIR
#define KASI_SOURCE_RULES_DIR KASI_RULES_DIR
#endif

namespace kasi {

namespace {

bool is_dir(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string default_rules_dir() {
    const char* env = std::getenv("KASI_RULES_DIR");
    if (env && *env) return env;
    if (is_dir(KASI_RULES_DIR)) return KASI_RULES_DIR;
    return KASI_SOURCE_RULES_DIR;
}

bool operator_rule_files(const std::string& config_dir, std::vector<std::string>& out,
                         std::string& err) {
    if (is_file(config_dir + "/classify.rules")) out.push_back(config_dir + "/classify.rules");
    if (!is_dir(config_dir + "/classify.d")) return true;
    return list_rule_files(config_dir + "/classify.d", out, err);
}

}  // namespace kasi
