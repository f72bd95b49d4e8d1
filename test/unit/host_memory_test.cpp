// Guest memory against what the host can give (issue 12, #8).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/logger.h"
#include "vmm/config.h"
#include "vmm/host_memory.h"

using kairos::vmm::Config;
using kairos::vmm::HostMemory;

namespace {

// As a 3 GiB host prints it (proc(5)); SwapTotal before SwapFree, and a
// "MemAvailable"-like prefix elsewhere that must not be taken for it.
constexpr const char *kMeminfo = "MemTotal:        3049260 kB\n"
				 "MemFree:          120000 kB\n"
				 "MemAvailable:    2097152 kB\n"
				 "SwapTotal:       1048576 kB\n"
				 "SwapFree:         524288 kB\n"
				 "XMemAvailable:         1 kB\n";

struct MeminfoFile {
	explicit MeminfoFile(const std::string &text)
	{
		path = std::filesystem::temp_directory_path() / ("kairos-meminfo-" + std::to_string(::getpid()));
		std::ofstream(path) << text;
	}
	~MeminfoFile() { std::filesystem::remove(path); }
	std::filesystem::path path;
};

Config config_of(uint64_t memory_mib, Config::Machine::MemoryCheck check)
{
	Config config;
	config.machine.memory_mib = memory_mib;
	config.machine.memory_check = check;
	return config;
}

}  // namespace

TEST_CASE("host memory: MemAvailable and SwapFree are read from /proc/meminfo text", "[host_memory]")
{
	auto host = kairos::vmm::parse_meminfo(kMeminfo);
	REQUIRE(host.ok());
	CHECK(host->available_mib == 2048);
	CHECK(host->swap_free_mib == 512);

	auto missing = kairos::vmm::parse_meminfo("MemTotal: 1 kB\nSwapFree: 0 kB\n");
	REQUIRE_FALSE(missing.ok());
	CHECK_THAT(missing.error().message, Catch::Contains("MemAvailable"));

	// This host's own file parses.
	CHECK(kairos::vmm::read_host_memory().ok());
}

TEST_CASE("host memory: a guest larger than RAM plus swap is named, one that fits is not", "[host_memory]")
{
	HostMemory host{2048, 512};
	CHECK_FALSE(kairos::vmm::memory_shortfall(2560, host));
	auto over = kairos::vmm::memory_shortfall(2561, host);
	REQUIRE(over);
	CHECK(*over == "machine.memory_mib: 2561 MiB is more than this host can give now "
		       "(2560 MiB: MemAvailable 2048 + SwapFree 512)");
}

TEST_CASE("host memory: machine.memory_check refuses, warns or stays quiet", "[host_memory]")
{
	using Check = Config::Machine::MemoryCheck;
	MeminfoFile meminfo(kMeminfo);
	std::vector<std::string> lines;
	kairos::Logger log(kairos::LogLevel::Warn, [&](std::string_view line) { lines.emplace_back(line); });
	auto refused = kairos::vmm::check_host_memory(config_of(65536, Check::Refuse), log, meminfo.path);
	REQUIRE_FALSE(refused.ok());
	CHECK_THAT(refused.error().message, Catch::StartsWith("machine.memory_mib: 65536 MiB is more than") &&
						    Catch::EndsWith("machine.memory_check is \"refuse\""));
	CHECK(kairos::vmm::check_host_memory(config_of(2048, Check::Refuse), log, meminfo.path).ok());
	CHECK(kairos::vmm::check_host_memory(config_of(65536, Check::Off), log, meminfo.path).ok());
	CHECK(lines.empty());
	CHECK(kairos::vmm::check_host_memory(config_of(65536, Check::Warn), log, meminfo.path).ok());
	REQUIRE(lines.size() == 1);
	CHECK_THAT(lines[0], Catch::StartsWith("kairos: warning: machine.memory_mib: 65536 MiB is more than"));
	// Unreadable: not checked, not refused.
	CHECK(kairos::vmm::check_host_memory(config_of(65536, Check::Refuse), log, "/nonexistent/meminfo").ok());
	// --log-level error hides the warning.
	lines.clear();
	kairos::Logger quiet(kairos::LogLevel::Error, [&](std::string_view line) { lines.emplace_back(line); });
	CHECK(kairos::vmm::check_host_memory(config_of(65536, Check::Warn), quiet, meminfo.path).ok());
	CHECK(lines.empty());
}
