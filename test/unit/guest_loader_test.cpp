#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test/unit/fake_bzimage.h"
#include "vmm/guest_loader.h"
#include "vmm/layout.h"

using namespace kairos::vmm;
namespace layout = kairos::layout;

namespace {

struct TempDir {
	std::filesystem::path path;
	TempDir()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "kairos-loader-XXXXXX").string();
		path = mkdtemp(pattern.data());
	}
	~TempDir() { std::filesystem::remove_all(path); }
};

void write_file(const std::filesystem::path &path, const std::vector<uint8_t> &bytes)
{
	std::ofstream out(path, std::ios::binary);
	out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::string read_string(const GuestMemory &memory, uint64_t gpa, size_t length)
{
	std::string text(length, '\0');
	REQUIRE(memory.read_bytes(gpa, {reinterpret_cast<uint8_t *>(text.data()), length}).ok());
	return text;
}

Config config_for(const std::filesystem::path &kernel, std::string cmdline)
{
	Config config;
	config.boot.kernel = kernel;
	config.boot.cmdline = std::move(cmdline);
	return config;
}

}  // namespace

TEST_CASE("guest loader: tsc_early_khz only without kvm-clock, once, and only with a rate", "[loader]")
{
	Config config = config_for("vmlinuz", "console=ttyS0");
	CHECK(guest_cmdline(config, 2'000'000) == "console=ttyS0");  // kvm-clock on
	config.clock.kvmclock = false;
	CHECK(guest_cmdline(config, 2'000'000) == "console=ttyS0 tsc_early_khz=2000000");
	CHECK(guest_cmdline(config, std::nullopt) == "console=ttyS0");
	config.boot.cmdline = "tsc_early_khz=1234";
	CHECK(guest_cmdline(config, 2'000'000) == "tsc_early_khz=1234");  // the user's wins
}

TEST_CASE("guest loader: writes kernel, command line and firmware tables", "[loader]")
{
	TempDir dir;
	write_file(dir.path / "vmlinuz", kairos::test::fake_bzimage());
	Config config = config_for(dir.path / "vmlinuz", "console=ttyS0 quiet");
	config.clock.kvmclock = false;
	config.machine.vcpus = 2;
	auto memory = GuestMemory::create(64 << 20);
	REQUIRE(memory.ok());

	auto entry = load_guest(*memory, config, 1'500'000);
	REQUIRE(entry.ok());
	CHECK(entry->zero_page != 0);
	std::string expected = "console=ttyS0 quiet tsc_early_khz=1500000";
	CHECK(read_string(*memory, layout::kCmdlineAddr, expected.size() + 1) == expected + '\0');
	CHECK(read_string(*memory, layout::kMpTableAddr, 4) == "_MP_");
	// The RSDP is found by its signature in the BIOS area.
	std::string acpi =
		read_string(*memory, layout::kAcpiTablesAddr, layout::kMpTableAddr - layout::kAcpiTablesAddr);
	CHECK(acpi.find("RSD PTR ") != std::string::npos);
	CHECK(acpi.find("APIC") != std::string::npos);
}

TEST_CASE("guest loader: errors name the key and the file", "[loader]")
{
	TempDir dir;
	auto memory = GuestMemory::create(64 << 20);
	REQUIRE(memory.ok());

	auto missing = load_guest(*memory, config_for(dir.path / "none", ""), std::nullopt);
	REQUIRE_FALSE(missing.ok());
	CHECK_THAT(missing.error().message, Catch::StartsWith("boot.kernel " + (dir.path / "none").string()));

	write_file(dir.path / "text", std::vector<uint8_t>(4096, 'x'));
	auto not_bzimage = load_guest(*memory, config_for(dir.path / "text", ""), std::nullopt);
	REQUIRE_FALSE(not_bzimage.ok());
	CHECK_THAT(not_bzimage.error().message, Catch::Contains("boot.kernel " + (dir.path / "text").string() + ": "));

	write_file(dir.path / "vmlinuz", kairos::test::fake_bzimage());
	Config config = config_for(dir.path / "vmlinuz", "");
	config.boot.initrd = dir.path / "no-initrd";
	auto no_initrd = load_guest(*memory, config, std::nullopt);
	REQUIRE_FALSE(no_initrd.ok());
	CHECK_THAT(no_initrd.error().message, Catch::StartsWith("boot.initrd "));
}

TEST_CASE("guest loader: a command line too long names what Kairos added to it", "[loader]")
{
	// Issue 11: 2026 bytes boot with kvm-clock on and fail with it off,
	// once ' tsc_early_khz=N' is appended.
	TempDir dir;
	write_file(dir.path / "vmlinuz", kairos::test::fake_bzimage());  // cmdline_size 2047
	auto memory = GuestMemory::create(64 << 20);
	REQUIRE(memory.ok());
	Config config = config_for(dir.path / "vmlinuz", std::string(2026, 'x'));
	CHECK(load_guest(*memory, config, 2'893'202).ok());

	config.clock.kvmclock = false;
	auto added = load_guest(*memory, config, 2'893'202);
	REQUIRE_FALSE(added.ok());
	CHECK(added.error().message ==
	      "boot.cmdline: 2026 bytes of your own and 22 that Kairos adds (' tsc_early_khz=' "
	      "and the TSC rate, because clock.kvmclock is false); this kernel accepts at most 2047");

	config.boot.cmdline = std::string(2048, 'x');
	auto own = load_guest(*memory, config, std::nullopt);
	REQUIRE_FALSE(own.ok());
	CHECK(own.error().message == "boot.cmdline: 2048 bytes; this kernel accepts at most 2047");
}

TEST_CASE("guest loader: check_guest finds without KVM what a run would", "[loader]")
{
	TempDir dir;
	write_file(dir.path / "vmlinuz", kairos::test::fake_bzimage());
	Config config = config_for(dir.path / "vmlinuz", "console=ttyS0");
	config.machine.memory_mib = 64;
	CHECK(check_guest(config).ok());
	// It counts the longest addition a host could make.
	config.clock.kvmclock = false;
	config.boot.cmdline = std::string(2047 - 22, 'x');
	CHECK(check_guest(config).ok());
	config.boot.cmdline.push_back('x');
	CHECK_FALSE(check_guest(config).ok());

	write_file(dir.path / "text", std::vector<uint8_t>(4096, 'x'));
	auto not_bzimage = check_guest(config_for(dir.path / "text", ""));
	REQUIRE_FALSE(not_bzimage.ok());
	CHECK_THAT(not_bzimage.error().message, Catch::Contains("not a bzImage"));
}

TEST_CASE("guest loader: prepare_guest loads once, finish_guest_cmdline puts the real TSC rate in", "[loader]")
{
	TempDir dir;
	write_file(dir.path / "vmlinuz", kairos::test::fake_bzimage());
	Config config = config_for(dir.path / "vmlinuz", "console=ttyS0");
	config.machine.memory_mib = 64;
	config.clock.kvmclock = false;
	auto guest = prepare_guest(config);
	REQUIRE(guest.ok());
	const std::string longest = "console=ttyS0 tsc_early_khz=9999999";
	CHECK(read_string(guest->memory, layout::kCmdlineAddr, longest.size() + 1) == longest + '\0');

	REQUIRE(finish_guest_cmdline(guest->memory, config, 2'000'000).ok());
	const std::string real = "console=ttyS0 tsc_early_khz=2000000";
	CHECK(read_string(guest->memory, layout::kCmdlineAddr, real.size() + 1) == real + '\0');
	// No rate from KVM: the guest calibrates itself, nothing is added.
	REQUIRE(finish_guest_cmdline(guest->memory, config, std::nullopt).ok());
	CHECK(read_string(guest->memory, layout::kCmdlineAddr, 14) == "console=ttyS0" + std::string(1, '\0'));

	// With kvm-clock nothing was added, and nothing is rewritten.
	config.clock.kvmclock = true;
	auto plain = prepare_guest(config);
	REQUIRE(plain.ok());
	REQUIRE(plain->memory.write_bytes(layout::kCmdlineAddr, std::vector<uint8_t>{'m', 0}).ok());
	REQUIRE(finish_guest_cmdline(plain->memory, config, 2'000'000).ok());
	CHECK(read_string(plain->memory, layout::kCmdlineAddr, 2) == std::string("m") + '\0');
}
