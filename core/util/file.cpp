#include "core/util/file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kasi {

bool read_whole_file(const std::string& path, std::string& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}

bool read_file_capped(const std::string& path, size_t max, std::string& out, std::string& err) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        err = std::strerror(errno);
        return false;
    }
    out.clear();
    char buf[65536];
    while (out.size() < max && f) {  // by chunks: a small file costs a small buffer
        f.read(buf, std::streamsize(std::min(sizeof buf, max - out.size())));
        out.append(buf, size_t(f.gcount()));
    }
    if (f.bad()) {
        err = "read error";
        return false;
    }
    return true;
}

}  // namespace kasi
