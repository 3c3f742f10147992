#include "core/spool/segment_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kasi {

std::string segment_name(SegmentKind kind, uint64_t seq) {
    return fmt::format("{}-{:016x}.seg", kind == SegmentKind::msg ? "msg" : "meta", seq);
}

bool list_segments(const std::string& dir, SegmentKind kind, std::vector<SegmentFile>& out,
                   std::string& err) {
    out.clear();
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        err = fmt::format("{}: {}", dir, std::strerror(errno));
        return false;
    }
    std::string prefix = kind == SegmentKind::msg ? "msg-" : "meta-";
    while (auto* ent = ::readdir(d)) {
        std::string_view n(ent->d_name);
        if (!n.starts_with(prefix) || !n.ends_with(".seg")) continue;
        auto hex = n.substr(prefix.size(), n.size() - prefix.size() - 4);
        if (hex.size() != 16) continue;
        char* end = nullptr;
        std::string h(hex);
        uint64_t seq = std::strtoull(h.c_str(), &end, 16);
        if (*end != '\0') continue;
        out.push_back(SegmentFile{kind, seq, dir + "/" + std::string(n)});
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.seq < b.seq; });
    return true;
}

MappedFile::~MappedFile() {
    if (addr_) ::munmap(addr_, size_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept : addr_(o.addr_), size_(o.size_) {
    o.addr_ = nullptr;
    o.size_ = 0;
}

bool MappedFile::open(const std::string& path, std::string& err) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        return false;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        ::close(fd);
        return false;
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
        addr_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr_ == MAP_FAILED) {
            addr_ = nullptr;
            err = fmt::format("{}: mmap: {}", path, std::strerror(errno));
            ::close(fd);
            return false;
        }
    }
    ::close(fd);
    return true;
}

}  // namespace kasi
