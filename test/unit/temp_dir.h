// For unit tests that need a scratch directory: made under /tmp, removed with everything in
// it when the object goes.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace kasi::test {

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/kasi-test-XXXXXX";
        path = mkdtemp(t);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

}  // namespace kasi::test
