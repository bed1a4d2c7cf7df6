// Disk accounting of a job's directories (blocking::measure_disk, on a real
// temporary directory) and the sampling schedule (next_disk_sample, pure).

#include "support/support.hpp"

#include <faasd/sandbox/disk.hpp>
#include <faasd/sandbox/limits.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace fs = std::filesystem;
using namespace faasd::sandbox;
using namespace std::chrono_literals;

namespace {

void write_file(const fs::path& p, std::size_t bytes) { std::ofstream(p, std::ios::binary) << std::string(bytes, 'x'); }

constexpr std::uint64_t big = 1ull << 40;

}  // namespace

TEST_CASE("an entry is charged its blocks or size, rounded to 4 KiB, at least 4 KiB", "[sandbox][unit]") {
    CHECK(disk_charge(true, 0, 0) == 4096);         // an empty file still costs an inode
    CHECK(disk_charge(true, 1, 8) == 4096);
    CHECK(disk_charge(true, 4097, 16) == 8192);
    CHECK(disk_charge(true, 1 << 20, 0) == 1 << 20);  // sparse: the size counts
    CHECK(disk_charge(false, 1 << 20, 8) == 4096);   // a directory: its blocks only
    CHECK(disk_charge(false, 0, 40) == 20480);
}

TEST_CASE("measure_disk sums a tree and stops once over the limit", "[sandbox][unit]") {
    faasd::test::temp_dir tmp("faasd-disk");
    const auto out = tmp.path() / "output";
    const auto res = tmp.path() / "result";
    fs::create_directories(out / "sub" / "deeper");
    fs::create_directories(res);
    write_file(out / "a", 100'000);
    write_file(out / "sub" / "b", 10);
    write_file(out / "sub" / "deeper" / "c", 5000);
    write_file(res / "result.json", 2);

    auto u = blocking::measure_disk({out, res, tmp.path() / "missing"}, {}, big);
    CHECK_FALSE(u.over);
    CHECK(u.entries == 8);  // 2 roots, 2 subdirectories, 4 files
    // files: 100000 -> 102400, 10 -> 4096, 5000 -> 8192, 2 -> 4096; directories at least 4096 each
    CHECK(u.bytes >= 102400 + 4096 + 8192 + 4096 + 4 * 4096);
    CHECK(u.bytes < 102400 + 4096 + 8192 + 4096 + 4 * 4096 + 64 * 1024);

    // The walk stops as soon as the sum passes the limit, however big the tree.
    for (int i = 0; i < 500; ++i) write_file(out / ("many" + std::to_string(i)), 1);
    auto capped = blocking::measure_disk({out}, {}, 64 * 1024);
    CHECK(capped.over);
    CHECK(capped.entries <= 64 * 1024 / disk_entry_bytes + 1);
    CHECK(capped.why == "its directories went past 65536 bytes");
}

TEST_CASE("measure_disk does not follow symlinks and refuses trees it cannot walk", "[sandbox][unit]") {
    faasd::test::temp_dir tmp("faasd-disk");
    const auto out = tmp.path() / "output";
    fs::create_directories(out);
    const auto elsewhere = tmp.path() / "elsewhere";
    fs::create_directories(elsewhere);
    write_file(elsewhere / "huge", 1 << 20);
    fs::create_directory_symlink(elsewhere, out / "link");
    fs::create_symlink(elsewhere / "huge", out / "file-link");
    auto u = blocking::measure_disk({out}, {}, 512 * 1024);
    CHECK_FALSE(u.over);
    CHECK(u.entries == 3);

    // Too deep: over, whatever the sizes.
    fs::path d = out;
    for (int i = 0; i <= disk_max_depth; ++i) d /= "d";
    fs::create_directories(d);
    auto deep = blocking::measure_disk({out}, {}, big);
    CHECK(deep.over);
    CHECK(deep.why.find("nested") != std::string::npos);
    // One level less is fine.
    fs::remove(d);
    CHECK_FALSE(blocking::measure_disk({out}, {}, big).over);
}

TEST_CASE("measure_disk counts deleted files that the processes still hold open", "[sandbox][unit]") {
    faasd::test::temp_dir tmp("faasd-disk");
    const auto out = tmp.path() / "output";
    fs::create_directories(out);
    // Whatever this test process already holds (other tests' files) is the baseline.
    const auto base = blocking::measure_disk({out}, {::getpid()}, big).unlinked_bytes;
    const auto p = out / "ghost";
    int fd = ::open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    std::string mib(1 << 20, 'g');
    REQUIRE(::write(fd, mib.data(), mib.size()) == static_cast<ssize_t>(mib.size()));
    ::unlink(p.c_str());

    auto without = blocking::measure_disk({out}, {}, big);
    CHECK(without.bytes < (64u << 10));  // invisible to the walk
    auto with = blocking::measure_disk({out}, {::getpid()}, big);
    CHECK(with.unlinked_bytes >= base + (1u << 20));
    CHECK(with.bytes >= without.bytes + (1u << 20));
    // Held twice, counted once.
    int dup = ::dup(fd);
    CHECK(blocking::measure_disk({out}, {::getpid(), ::getpid()}, big).unlinked_bytes == with.unlinked_bytes);
    auto over = blocking::measure_disk({out}, {::getpid()}, without.bytes + 512 * 1024);
    CHECK(over.over);
    CHECK(over.why.find("deleted files") != std::string::npos);
    ::close(dup);
    ::close(fd);
    CHECK(blocking::measure_disk({out}, {::getpid()}, big).unlinked_bytes == base);
}

TEST_CASE("disk samples come sooner near the limit and never cost more than a fifth of a thread", "[sandbox][unit]") {
    constexpr std::uint64_t mib = 1 << 20;
    // Idle or no growth: the slowest pace.
    CHECK(next_disk_sample(0, 256 * mib, 0, 0us) == disk_sample_max);
    CHECK(next_disk_sample(10 * mib, 256 * mib, 0, 100us) == disk_sample_max);
    // Half the time to the limit at the current rate: 100 MiB left at 1 GiB/s is ~98 ms -> 48 ms.
    CHECK(next_disk_sample(156 * mib, 256 * mib, 1024.0 * mib, 0us) == 48ms);
    // Close to the limit, or past it: the fastest pace.
    CHECK(next_disk_sample(255 * mib, 256 * mib, 1024.0 * mib, 0us) == disk_sample_min);
    CHECK(next_disk_sample(300 * mib, 256 * mib, 0, 0us) == disk_sample_min);
    // Slow growth far from the limit: capped at the slowest pace.
    CHECK(next_disk_sample(0, 256 * mib, 1024, 0us) == disk_sample_max);
    // An expensive scan stretches the interval to 4x its cost.
    CHECK(next_disk_sample(255 * mib, 256 * mib, 1024.0 * mib, 30ms) == 120ms);
    CHECK(next_disk_sample(0, 256 * mib, 0, 200ms) == 800ms);
}
