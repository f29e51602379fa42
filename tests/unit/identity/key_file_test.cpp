#include "keyhole/identity/key_pair.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using keyhole::identity::KeyPair;
using keyhole::identity::verify_signature;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A fresh directory under testing::TempDir(), removed with everything in it.
class KeyFile : public testing::Test {
protected:
    void SetUp() override {
        ASSERT_GE(sodium_init(), 0);
        std::string pattern = testing::TempDir();
        if (pattern.empty() || pattern.back() != '/') pattern += '/';
        pattern += "keyhole-keyfile-XXXXXX";
        std::vector<char> buf(pattern.begin(), pattern.end());
        buf.push_back('\0');
        ASSERT_NE(::mkdtemp(buf.data()), nullptr);
        dir_ = buf.data();
    }
    void TearDown() override {
        std::error_code ec;
        if (!dir_.empty()) fs::remove_all(dir_, ec);
    }

    static void write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes,
                           mode_t mode) {
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(bytes.data()),
                      static_cast<std::streamsize>(bytes.size()));
            ASSERT_TRUE(out.good());
        }
        ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    }

    static std::vector<std::uint8_t> read_file(const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }

    static mode_t mode_of(const fs::path& path) {
        struct stat st {};
        EXPECT_EQ(::stat(path.c_str(), &st), 0);
        return st.st_mode & 07777;
    }

    fs::path dir_;
};

}  // namespace

TEST_F(KeyFile, SaveThenLoadGivesSameKey) {
    const KeyPair key = KeyPair::generate();
    const fs::path path = dir_ / "identity.key";
    auto saved = key.save(path);
    ASSERT_TRUE(saved) << saved.error();

    EXPECT_EQ(mode_of(path), 0600u);
    const auto bytes = read_file(path);
    ASSERT_EQ(bytes.size(), 64u);
    // libsodium layout: seed || public key.
    EXPECT_TRUE(std::equal(key.public_key().begin(), key.public_key().end(), bytes.begin() + 32));

    auto loaded = KeyPair::load(path);
    ASSERT_TRUE(loaded) << loaded.error();
    EXPECT_EQ(loaded->public_key(), key.public_key());
    EXPECT_EQ(loaded->id(), key.id());

    // Same secret too: the loaded key's signatures verify under the old key.
    const std::vector<std::uint8_t> message = {'h', 'i'};
    EXPECT_EQ(loaded->sign(message), key.sign(message));
}

TEST_F(KeyFile, SaveLeavesNoTemporaryFileBehind) {
    const fs::path path = dir_ / "identity.key";
    ASSERT_TRUE(KeyPair::generate().save(path));
    const KeyPair second = KeyPair::generate();
    ASSERT_TRUE(second.save(path));  // replaces the first one

    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"identity.key"});

    auto loaded = KeyPair::load(path);
    ASSERT_TRUE(loaded) << loaded.error();
    EXPECT_EQ(loaded->public_key(), second.public_key());
}

TEST_F(KeyFile, SaveReplacesStaleTemporaryFileOfSamePid) {
    const fs::path path = dir_ / "identity.key";
    const fs::path stale = path.string() + ".tmp." + std::to_string(::getpid());
    write_file(stale, {1, 2, 3}, 0600);
    ASSERT_TRUE(KeyPair::generate().save(path));
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(KeyPair::load(path));
}

TEST_F(KeyFile, SaveIntoMissingDirectoryFailsNamingThePath) {
    const fs::path path = dir_ / "missing" / "identity.key";
    auto saved = KeyPair::generate().save(path);
    ASSERT_FALSE(saved);
    EXPECT_TRUE(contains(saved.error(), path.string())) << saved.error();
    EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

TEST_F(KeyFile, RefusesGroupOrWorldReadableFile) {
    const fs::path path = dir_ / "identity.key";
    ASSERT_TRUE(KeyPair::generate().save(path));

    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto loaded = KeyPair::load(path);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(), path.string() + ": permissions 0644 are too open, expected 0600 "
                                              "(chmod 600 " + path.string() + ")");

    for (mode_t mode : {0640, 0604, 0660, 0601, 0610, 0777}) {
        ASSERT_EQ(::chmod(path.c_str(), mode), 0);
        auto refused = KeyPair::load(path);
        ASSERT_FALSE(refused) << std::oct << mode;
        EXPECT_TRUE(contains(refused.error(), path.string())) << refused.error();
        EXPECT_TRUE(contains(refused.error(), "too open")) << refused.error();
    }

    ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // stricter than 0600 is fine
    EXPECT_TRUE(KeyPair::load(path));
}

TEST_F(KeyFile, RefusesWrongSize) {
    const fs::path path = dir_ / "identity.key";
    for (std::size_t size : {0u, 1u, 32u, 63u, 65u, 128u}) {
        write_file(path, std::vector<std::uint8_t>(size, 0x42), 0600);
        auto loaded = KeyPair::load(path);
        ASSERT_FALSE(loaded) << size;
        EXPECT_EQ(loaded.error(),
                  path.string() + ": wrong size " + std::to_string(size) + " bytes, expected 64");
    }
}

TEST_F(KeyFile, RefusesPublicHalfThatDoesNotMatchSecretHalf) {
    const fs::path path = dir_ / "identity.key";
    std::vector<std::uint8_t> garbage(64);
    randombytes_buf(garbage.data(), garbage.size());
    write_file(path, garbage, 0600);
    auto loaded = KeyPair::load(path);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(),
              path.string() + ": corrupt key file (public key does not match secret key)");

    // A real key file with one bit of the public half flipped.
    ASSERT_TRUE(KeyPair::generate().save(path));
    auto bytes = read_file(path);
    bytes[40] ^= 0x01;
    write_file(path, bytes, 0600);
    loaded = KeyPair::load(path);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(contains(loaded.error(), "corrupt key file")) << loaded.error();
}

TEST_F(KeyFile, RefusesMissingFile) {
    const fs::path path = dir_ / "nope.key";
    auto loaded = KeyPair::load(path);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(), path.string() + ": cannot open: No such file or directory");
}

TEST_F(KeyFile, RefusesDirectory) {
    const fs::path path = dir_ / "a-directory";
    ASSERT_TRUE(fs::create_directory(path));
    ASSERT_EQ(::chmod(path.c_str(), 0700), 0);
    auto loaded = KeyPair::load(path);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(contains(loaded.error(), path.string())) << loaded.error();
}

TEST_F(KeyFile, LoadOrCreateCreatesThenReuses) {
    const fs::path path = dir_ / "state" / "keys" / "identity.key";

    auto created = KeyPair::load_or_create(path);
    ASSERT_TRUE(created) << created.error();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_EQ(mode_of(dir_ / "state"), 0700u);
    EXPECT_EQ(mode_of(dir_ / "state" / "keys"), 0700u);

    auto reused = KeyPair::load_or_create(path);
    ASSERT_TRUE(reused) << reused.error();
    EXPECT_EQ(reused->public_key(), created->public_key());
}

TEST_F(KeyFile, LoadOrCreateDoesNotOverwriteBadFile) {
    const fs::path path = dir_ / "identity.key";
    write_file(path, std::vector<std::uint8_t>(10, 0), 0600);
    auto loaded = KeyPair::load_or_create(path);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(contains(loaded.error(), "wrong size 10 bytes")) << loaded.error();
    EXPECT_EQ(read_file(path).size(), 10u);
}

TEST(KeyPair, SignaturesVerifyOnlyForTheRightKeyAndMessage) {
    const KeyPair key = KeyPair::generate();
    const KeyPair other = KeyPair::generate();
    const std::vector<std::uint8_t> message = {1, 2, 3, 4, 5};
    const auto signature = key.sign(message);

    EXPECT_TRUE(verify_signature(key.public_key(), message, signature));
    EXPECT_FALSE(verify_signature(other.public_key(), message, signature));

    auto changed = message;
    changed[0] ^= 1;
    EXPECT_FALSE(verify_signature(key.public_key(), changed, signature));

    auto bad = signature;
    bad[10] ^= 0x40;
    EXPECT_FALSE(verify_signature(key.public_key(), message, bad));

    // Wrong signature sizes are refused, not read past.
    const std::vector<std::uint8_t> short_sig(signature.begin(), signature.begin() + 63);
    EXPECT_FALSE(verify_signature(key.public_key(), message, short_sig));
    std::vector<std::uint8_t> long_sig(signature.begin(), signature.end());
    long_sig.push_back(0);
    EXPECT_FALSE(verify_signature(key.public_key(), message, long_sig));
    EXPECT_FALSE(verify_signature(key.public_key(), message, std::span<const std::uint8_t>{}));

    // Empty messages can be signed and verified.
    const auto empty_sig = key.sign({});
    EXPECT_TRUE(verify_signature(key.public_key(), {}, empty_sig));
}

TEST(KeyPair, X25519KeysFormAPair) {
    const KeyPair key = KeyPair::generate();
    const auto secret = key.x25519_secret();
    const auto expected_public = key.x25519_public();
    std::array<std::uint8_t, 32> derived{};
    ASSERT_EQ(crypto_scalarmult_base(derived.data(), secret.data()), 0);
    EXPECT_EQ(derived, expected_public);

    // Two parties agree on a shared secret.
    const KeyPair peer = KeyPair::generate();
    std::array<std::uint8_t, 32> a{}, b{};
    ASSERT_EQ(crypto_scalarmult(a.data(), key.x25519_secret().data(), peer.x25519_public().data()), 0);
    ASSERT_EQ(crypto_scalarmult(b.data(), peer.x25519_secret().data(), key.x25519_public().data()), 0);
    EXPECT_EQ(a, b);
}

TEST(KeyPair, GeneratesDistinctKeys) {
    EXPECT_NE(KeyPair::generate().public_key(), KeyPair::generate().public_key());
}
