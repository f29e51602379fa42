// Test support: a fresh directory under /tmp, removed with everything in it.
// Short paths on purpose: Unix socket paths are limited to 107 bytes.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace keyhole::testing {

class TempDir {
public:
    TempDir() {
        std::string pattern = "/tmp/kh-test-XXXXXX";
        path_ = mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace keyhole::testing
