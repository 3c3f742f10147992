// Naming and reading of segment files in a spool directory:
//   msg-<16 hex seq>.seg   message records (immutable envelope + body)
//   meta-<16 hex seq>.seg  state records (the metadata journal)
// Sequence numbers only grow; a reader replays files in sequence order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kasi {

enum class SegmentKind { msg, meta };

struct SegmentFile {
    SegmentKind kind;
    uint64_t seq;
    std::string path;
};

std::string segment_name(SegmentKind kind, uint64_t seq);
// Segments of `kind` in `dir`, by sequence; false with `err` if the directory is unreadable.
bool list_segments(const std::string& dir, SegmentKind kind, std::vector<SegmentFile>& out,
                   std::string& err);

// A read-only memory map of a file; empty for an empty file.
class MappedFile {
  public:
    MappedFile() = default;
    ~MappedFile();
    MappedFile(MappedFile&& o) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;

    bool open(const std::string& path, std::string& err);
    std::string_view data() const { return {static_cast<const char*>(addr_), size_}; }

  private:
    void* addr_ = nullptr;
    size_t size_ = 0;
};

}  // namespace kasi
