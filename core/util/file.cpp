#include "core/util/file.h"

#include <fcntl.h>
#include <unistd.h>

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

bool write_file_replacing(const std::string& path, std::string_view data, std::string& err) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0;
    for (size_t off = 0; ok && off < data.size();) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) off += size_t(n);
    }
    ok = ok && ::fdatasync(fd) == 0;
    int e = errno;
    if (fd >= 0) ::close(fd);
    if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) return true;
    err = tmp + ": " + std::strerror(ok ? errno : e);
    return false;
}

}  // namespace kasi
