// The daemon's Ed25519 key pair and its key file.
//
// Key file format: exactly 64 raw bytes, libsodium's Ed25519 secret key
// (32-byte seed || 32-byte public key), mode 0600. On load the public half is
// re-derived from the seed and must match the stored one.
#include "keyhole/identity/key_pair.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace keyhole::identity {
namespace {

bool sodium_ready() {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

// For functions that cannot report an error: without libsodium nothing works.
void require_sodium() {
    if (!sodium_ready()) {
        std::fputs("keyhole: libsodium initialisation failed\n", stderr);
        std::abort();
    }
}

std::string errno_text(int err) { return std::strerror(err); }

std::string octal_mode(mode_t mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// Closes fd on scope exit unless released.
class FdGuard {
public:
    explicit FdGuard(int fd) : fd_(fd) {}
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    ~FdGuard() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

// Reads exactly n bytes unless EOF comes first. Returns bytes read, -1 on error.
ssize_t read_full(int fd, std::uint8_t* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        ssize_t r = ::read(fd, buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        done += static_cast<std::size_t>(r);
    }
    return static_cast<ssize_t>(done);
}

bool write_full(int fd, const std::uint8_t* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        ssize_t w = ::write(fd, buf + done, n - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (w == 0) {
            errno = EIO;
            return false;
        }
        done += static_cast<std::size_t>(w);
    }
    return true;
}

// Creates every missing directory leading to `dir` with mode 0700.
// Existing directories are left as they are.
Status create_directories_0700(const std::filesystem::path& dir) {
    std::filesystem::path prefix;
    for (const auto& part : dir) {
        prefix /= part;
        if (part.empty() || prefix == prefix.root_path()) continue;
        if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
            return fail(prefix.string() + ": cannot create directory: " + errno_text(errno));
        }
    }
    return success();
}

}  // namespace

KeyPair KeyPair::generate() {
    require_sodium();
    KeyPair kp;
    crypto_sign_ed25519_keypair(kp.public_key_.data(), kp.secret_key_.data());
    return kp;
}

KeyPair::~KeyPair() { sodium_memzero(secret_key_.data(), secret_key_.size()); }

Result<KeyPair> KeyPair::load(const std::filesystem::path& path) {
    const std::string name = path.string();
    if (!sodium_ready()) return fail(name + ": cannot load key: libsodium initialisation failed");

    FdGuard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) return fail(name + ": cannot open: " + errno_text(errno));

    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail(name + ": cannot stat: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) return fail(name + ": not a regular file");
    if ((st.st_mode & 077) != 0) {
        return fail(name + ": permissions " + octal_mode(st.st_mode) +
                    " are too open, expected 0600 (chmod 600 " + name + ")");
    }
    if (st.st_size != static_cast<off_t>(kSecretKeySize)) {
        return fail(name + ": wrong size " + std::to_string(st.st_size) + " bytes, expected " +
                    std::to_string(kSecretKeySize));
    }

    KeyPair kp;  // its destructor wipes the secret on every exit path
    const ssize_t got = read_full(fd.get(), kp.secret_key_.data(), kp.secret_key_.size());
    if (got < 0) return fail(name + ": cannot read: " + errno_text(errno));
    if (static_cast<std::size_t>(got) != kSecretKeySize) {
        return fail(name + ": wrong size " + std::to_string(got) + " bytes, expected " +
                    std::to_string(kSecretKeySize));
    }

    // Re-derive the pair from the seed; the stored public half must match.
    unsigned char derived_pk[crypto_sign_ed25519_PUBLICKEYBYTES];
    unsigned char derived_sk[crypto_sign_ed25519_SECRETKEYBYTES];
    crypto_sign_ed25519_seed_keypair(derived_pk, derived_sk, kp.secret_key_.data());
    const bool match =
        std::memcmp(derived_pk, kp.secret_key_.data() + crypto_sign_ed25519_SEEDBYTES,
                    sizeof derived_pk) == 0;
    sodium_memzero(derived_sk, sizeof derived_sk);
    if (!match) return fail(name + ": corrupt key file (public key does not match secret key)");

    std::memcpy(kp.public_key_.data(), derived_pk, sizeof derived_pk);
    return kp;
}

Result<KeyPair> KeyPair::load_or_create(const std::filesystem::path& path) {
    const std::string name = path.string();
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return load(path);
    if (errno != ENOENT) return fail(name + ": cannot open: " + errno_text(errno));

    const auto parent = path.parent_path();
    if (!parent.empty()) {
        auto made = create_directories_0700(parent);
        if (!made) return fail(name + ": cannot create key file: " + made.error());
    }
    KeyPair kp = generate();
    auto saved = kp.save(path);
    if (!saved) return Error{saved.error()};
    return kp;
}

Status KeyPair::save(const std::filesystem::path& path) const {
    const std::string name = path.string();
    const std::string tmp = name + ".tmp." + std::to_string(::getpid());
    auto error = [&](const std::string& step, int err) {
        return fail(name + ": cannot save key file: " + step + ": " + errno_text(err));
    };

    const int flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
    int raw_fd = ::open(tmp.c_str(), flags, 0600);
    if (raw_fd < 0 && errno == EEXIST) {
        // A temp file left by an earlier crash of a process with our pid
        // (common in containers, where the daemon is often pid 1).
        if (::unlink(tmp.c_str()) == 0) raw_fd = ::open(tmp.c_str(), flags, 0600);
        else errno = EEXIST;
    }
    if (raw_fd < 0) return error("cannot create " + tmp, errno);
    FdGuard fd(raw_fd);

    auto abandon = [&](const std::string& step) {
        const int err = errno;
        if (fd.get() >= 0) ::close(fd.release());
        ::unlink(tmp.c_str());
        return error(step, err);
    };

    // umask may have cleared bits but can never add any; make it exactly 0600.
    if (::fchmod(fd.get(), 0600) != 0) return abandon("chmod " + tmp);
    if (!write_full(fd.get(), secret_key_.data(), secret_key_.size())) {
        return abandon("write " + tmp);
    }
    if (::fsync(fd.get()) != 0) return abandon("fsync " + tmp);
    if (::close(fd.release()) != 0) return abandon("close " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return abandon("rename " + tmp);

    // Make the rename itself durable.
    std::filesystem::path dir = path.parent_path();
    if (dir.empty()) dir = ".";
    FdGuard dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) return error("open directory " + dir.string(), errno);
    if (::fsync(dir_fd.get()) != 0 && errno != EINVAL) {
        // EINVAL: the file system cannot sync directories; nothing more to do.
        return error("fsync directory " + dir.string(), errno);
    }
    return success();
}

SignatureBytes KeyPair::sign(std::span<const std::uint8_t> message) const {
    require_sodium();
    static const std::uint8_t empty = 0;
    const std::uint8_t* data = message.empty() ? &empty : message.data();
    SignatureBytes signature{};
    crypto_sign_ed25519_detached(signature.data(), nullptr, data, message.size(),
                                 secret_key_.data());
    return signature;
}

std::array<std::uint8_t, 32> KeyPair::x25519_secret() const {
    require_sodium();
    std::array<std::uint8_t, 32> out{};
    crypto_sign_ed25519_sk_to_curve25519(out.data(), secret_key_.data());
    return out;
}

std::array<std::uint8_t, 32> KeyPair::x25519_public() const {
    require_sodium();
    std::array<std::uint8_t, 32> out{};
    // Cannot fail for a key produced by generate() or accepted by load().
    if (crypto_sign_ed25519_pk_to_curve25519(out.data(), public_key_.data()) != 0) out.fill(0);
    return out;
}

bool verify_signature(const PublicKeyBytes& key, std::span<const std::uint8_t> message,
                      std::span<const std::uint8_t> signature) {
    if (!sodium_ready()) return false;
    if (signature.size() != crypto_sign_ed25519_BYTES) return false;
    static const std::uint8_t empty = 0;
    const std::uint8_t* data = message.empty() ? &empty : message.data();
    return crypto_sign_ed25519_verify_detached(signature.data(), data, message.size(),
                                               key.data()) == 0;
}

}  // namespace keyhole::identity
