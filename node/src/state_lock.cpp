#include "keyhole/node/state_lock.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace keyhole::node {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

Result<StateLock> StateLock::acquire(const std::filesystem::path& state_dir) {
    std::error_code error;
    if (std::filesystem::create_directories(state_dir, error))
        std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all, error);
    if (error) return fail(state_dir.string() + ": cannot create state directory: " + error.message());
    const auto lock_path = state_dir / "lock";
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return fail(lock_path.string() + ": cannot open: " + errno_text());
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int saved = errno;
        char holder[32] = {};
        const auto got = ::pread(fd, holder, sizeof(holder) - 1, 0);
        ::close(fd);
        if (saved == EWOULDBLOCK) {
            std::string pid = got > 0 ? std::string(holder, static_cast<std::size_t>(got)) : "?";
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
            return fail("another keyholed (pid " + pid + ") is using the state directory " + state_dir.string());
        }
        return fail(lock_path.string() + ": cannot lock: " + std::strerror(saved));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
        // The pid is only a hint for the error message above; the lock is what counts.
    }
    return StateLock(fd);
}

StateLock::~StateLock() {
    if (fd_ >= 0) ::close(fd_);
}

Status write_file_atomically(const std::filesystem::path& path, std::string_view contents, unsigned mode) {
    const auto temp = path.string() + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return fail(temp + ": cannot create: " + errno_text());
    std::size_t written = 0;
    while (written < contents.size()) {
        const auto n = ::write(fd, contents.data() + written, contents.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const auto reason = errno_text();
            ::close(fd);
            ::unlink(temp.c_str());
            return fail(temp + ": cannot write: " + reason);
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const auto reason = errno_text();
        ::unlink(temp.c_str());
        return fail(temp + ": cannot sync: " + reason);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const auto reason = errno_text();
        ::unlink(temp.c_str());
        return fail(path.string() + ": cannot replace: " + reason);
    }
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }
    return success();
}

}  // namespace keyhole::node
