// An exclusive lock on a state directory, so two daemons never share one identity.
#pragma once

#include <filesystem>

#include "keyhole/result.h"

namespace keyhole::node {

class StateLock {
public:
    // Creates the directory (mode 0700) if needed and takes <dir>/lock with
    // flock(LOCK_EX|LOCK_NB). Held until destruction; the kernel drops it if
    // the process dies, so a crash never leaves a stale lock.
    static Result<StateLock> acquire(const std::filesystem::path& state_dir);

    StateLock(StateLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    StateLock& operator=(StateLock&&) = delete;
    StateLock(const StateLock&) = delete;
    ~StateLock();

private:
    explicit StateLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

// Writes `contents` to `path` atomically: temp file (given mode), fsync, rename, fsync dir.
Status write_file_atomically(const std::filesystem::path& path, std::string_view contents, unsigned mode);

}  // namespace keyhole::node
