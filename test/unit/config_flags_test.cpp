// Command-line flags over a config file (issue 11): flags win, paths are
// resolved where each was written, errors name what the user typed; and
// the effective config as `kairos check` prints it reads back the same.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "vmm/config.h"

using kairos::vmm::Config;
using kairos::vmm::ConfigFlags;
using kairos::vmm::load_config;

namespace {

// A folder with a fake kernel and initrd, and a config file beside them.
struct Folder {
	Folder()
	{
		path = std::filesystem::temp_directory_path() / ("kairos-flags-test-" + std::to_string(::getpid()));
		std::filesystem::create_directories(path);
		std::ofstream(path / "vmlinuz") << "kernel";
		std::ofstream(path / "initrd.img") << "initrd";
		std::ofstream(path / "other-vmlinuz") << "kernel";
	}
	~Folder() { std::filesystem::remove_all(path); }
	std::filesystem::path write(const std::string &name, const std::string &text) const
	{
		std::ofstream(path / name) << text;
		return path / name;
	}
	std::filesystem::path path;
};

ConfigFlags kernel_flag(const std::filesystem::path &kernel)
{
	ConfigFlags flags;
	flags.kernel = kernel.string();
	return flags;
}

std::string error_of(const std::optional<std::filesystem::path> &file, const ConfigFlags &flags)
{
	auto config = load_config(file, flags);
	REQUIRE_FALSE(config.ok());
	return config.error().message;
}

}  // namespace

TEST_CASE("flags alone: the defaults plus the flags", "[config-flags]")
{
	Folder folder;
	ConfigFlags flags = kernel_flag(folder.path / "vmlinuz");
	flags.initrd = (folder.path / "initrd.img").string();
	flags.cmdline = "console=ttyS0 quiet";
	flags.vcpus = 2;
	flags.memory_mib = 512;
	auto config = load_config(std::nullopt, flags);
	REQUIRE(config.ok());
	CHECK(config->boot.kernel == folder.path / "vmlinuz");
	CHECK(config->boot.initrd == folder.path / "initrd.img");
	CHECK(config->boot.cmdline == "console=ttyS0 quiet");
	CHECK(config->machine.vcpus == 2);
	CHECK(config->machine.memory_mib == 512);
	// What no flag sets keeps its default.
	CHECK(config->clock.kvmclock);
	CHECK(config->console.output == Config::Console::Output::Stdout);

	auto bare = load_config(std::nullopt, kernel_flag(folder.path / "vmlinuz"));
	REQUIRE(bare.ok());
	CHECK(bare->boot.cmdline == kairos::vmm::kDefaultCmdline);
	CHECK(bare->machine.vcpus == 1);
	CHECK(bare->machine.memory_mib == 256);
}

TEST_CASE("flags win over the config file; the rest of the file stays", "[config-flags]")
{
	Folder folder;
	auto file = folder.write("vm.json", R"({"machine": {"vcpus": 4, "memory_mib": 1024},
		"boot": {"kernel": "vmlinuz", "cmdline": "from the file"}, "clock": {"kvmclock": false}})");
	ConfigFlags flags;
	flags.vcpus = 2;
	flags.cmdline = "from the flag";
	flags.kernel = (folder.path / "other-vmlinuz").string();
	auto config = load_config(file, flags);
	REQUIRE(config.ok());
	CHECK(config->machine.vcpus == 2);
	CHECK(config->machine.memory_mib == 1024);
	CHECK(config->boot.cmdline == "from the flag");
	CHECK(config->boot.kernel == folder.path / "other-vmlinuz");
	CHECK_FALSE(config->clock.kvmclock);

	// A flag can supply what the file lacks, and mend what it got wrong.
	auto no_kernel = folder.write("no-kernel.json", R"({"machine": {"vcpus": 0}})");
	ConfigFlags mend = kernel_flag(folder.path / "vmlinuz");
	mend.vcpus = 3;
	auto mended = load_config(no_kernel, mend);
	REQUIRE(mended.ok());
	CHECK(mended->machine.vcpus == 3);
}

TEST_CASE("a config file's paths are its folder's, a flag's the current directory's", "[config-flags]")
{
	Folder folder;
	auto file = folder.write("vm.json", R"({"boot": {"kernel": "vmlinuz", "initrd": "initrd.img"}})");
	auto from_file = load_config(file, {});
	REQUIRE(from_file.ok());
	CHECK(from_file->boot.kernel == folder.path / "vmlinuz");

	// The same relative name as a flag, from another directory, is looked
	// for there, and the error says where that was.
	auto cwd = std::filesystem::current_path();
	std::filesystem::current_path(std::filesystem::temp_directory_path());
	ConfigFlags relative;
	relative.initrd = "initrd.img";
	std::string message = error_of(file, relative);
	CHECK(message ==
	      "--initrd: " + (std::filesystem::temp_directory_path() / "initrd.img").string() + ": no such file");
	// From the config's folder, the flag's relative path resolves.
	std::filesystem::current_path(folder.path);
	auto here = load_config(file, relative);
	std::filesystem::current_path(cwd);
	REQUIRE(here.ok());
	CHECK(here->boot.initrd == folder.path / "initrd.img");
	CHECK(here->boot.initrd.is_absolute());
}

TEST_CASE("an error about a flag's value names the flag, not the key or the file", "[config-flags]")
{
	Folder folder;
	ConfigFlags flags = kernel_flag(folder.path / "vmlinuz");
	flags.vcpus = 0;
	CHECK(error_of(std::nullopt, flags) == "--cpus: must be 1..64, got 0");
	flags.vcpus = 65;
	CHECK(error_of(std::nullopt, flags) == "--cpus: must be 1..64, got 65");
	flags.vcpus.reset();
	flags.memory_mib = 0;
	CHECK(error_of(std::nullopt, flags) == "--memory: must be 64..65536, got 0");
	flags.memory_mib = -5;
	CHECK(error_of(std::nullopt, flags) == "--memory: must be 64..65536, got -5");
	CHECK(error_of(std::nullopt, kernel_flag(folder.path / "absent")) ==
	      "--kernel: " + (folder.path / "absent").string() + ": no such file");
	CHECK(error_of(std::nullopt, kernel_flag("")) == "--kernel: must not be empty");
	CHECK(error_of(std::nullopt, kernel_flag(folder.path)) ==
	      "--kernel: " + folder.path.string() + ": is a directory");

	// The file's own mistakes still name the file and the key.
	auto file = folder.write("vm.json", R"({"machine": {"memory_mib": 8}, "boot": {"kernel": "vmlinuz"}})");
	CHECK(error_of(file, ConfigFlags{}) == file.string() + ": machine.memory_mib: must be 64..65536, got 8");
	ConfigFlags cpus;
	cpus.vcpus = 2;
	CHECK(error_of(file, cpus) == file.string() + ": machine.memory_mib: must be 64..65536, got 8");
	// Without a file or --kernel, the kernel is missing.
	CHECK_THAT(error_of(std::nullopt, cpus), Catch::StartsWith("boot: is required"));
}

TEST_CASE("name_flag_in: later errors about a flag's key name the flag", "[config-flags]")
{
	using kairos::vmm::name_flag_in;
	ConfigFlags flags;
	flags.kernel = "/k";
	flags.cmdline = "x";
	CHECK(name_flag_in("boot.kernel /k: not a bzImage", flags) == "--kernel /k: not a bzImage");
	CHECK(name_flag_in("boot.cmdline: 3000 bytes; this kernel accepts at most 2048", flags) ==
	      "--append: 3000 bytes; this kernel accepts at most 2048");
	// Keys no flag set, and keys that only begin alike, are left alone.
	CHECK(name_flag_in("boot.initrd /i: no such file", flags) == "boot.initrd /i: no such file");
	CHECK(name_flag_in("machine.memory_mib: 65536 MiB is more", flags) == "machine.memory_mib: 65536 MiB is more");
	CHECK(name_flag_in("boot.kernels: x", flags) == "boot.kernels: x");
	flags.memory_mib = 65536;
	CHECK(name_flag_in("machine.memory_mib: 65536 MiB is more", flags) == "--memory: 65536 MiB is more");
}

TEST_CASE("config_to_json prints every key, and reads back to the same config", "[config-flags]")
{
	Folder folder;
	auto round_trip = [&](const std::string &text) {
		auto config = kairos::vmm::parse_config(text, folder.path);
		REQUIRE(config.ok());
		std::string printed = kairos::vmm::config_to_json(*config);
		auto again = kairos::vmm::parse_config(printed, "/nonexistent");  // every path is absolute
		INFO(printed);
		REQUIRE(again.ok());
		CHECK(kairos::vmm::config_to_json(*again) == printed);
		return printed;
	};
	std::string defaults = round_trip(R"({"boot": {"kernel": "vmlinuz"}})");
	CHECK_THAT(defaults, Catch::Contains("\"vcpus\": 1") && Catch::Contains("\"memory_mib\": 256") &&
				     Catch::Contains("\"kernel\": \"" + (folder.path / "vmlinuz").string() + "\"") &&
				     Catch::Contains("\"lead_us\": \"auto\"") && Catch::Contains("\"seccomp\": true"));
	CHECK_THAT(defaults, !Catch::Contains("initrd") && !Catch::Contains("max_file_mib"));
	// machine comes first, as in the README's reference.
	CHECK(defaults.find("\"machine\"") < defaults.find("\"boot\""));

	std::string full = round_trip(R"({
		"machine": {"vcpus": 4, "memory_mib": 512, "memory_check": "refuse"},
		"boot": {"kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0 quiet"},
		"console": {"output": "guest.log", "input": "none", "max_file_mib": 5},
		"clock": {"kvmclock": false, "refresh_ms": 250},
		"events": {"virtual_timer_hz": 100},
		"outsourcing": {"max_timers": 1000, "priority": "fifo:50", "advance_us": 40, "guest_wakeups_hz": 200,
		                "window": {"policy": "fifo", "runtime_us": 300, "period_us": 2000, "lead_us": 150,
		                           "timeout_us": 900, "fifo_priority": 7}},
		"drives": [{"id": "root", "path": "root.img", "read_only": true, "cache": "none"}],
		"security": {"seccomp": false}})");
	CHECK_THAT(full, Catch::Contains("\"priority\": \"fifo:50\"") && Catch::Contains("\"lead_us\": 150") &&
				 Catch::Contains("\"max_file_mib\": 5") && Catch::Contains("\"cache\": \"none\"") &&
				 Catch::Contains("\"path\": \"" + (folder.path / "root.img").string() + "\"") &&
				 Catch::Contains("\"memory_check\": \"refuse\""));
	// Without the Kairos device, outsourcing is only "off".
	std::string without = round_trip(R"({"boot": {"kernel": "vmlinuz"}, "clock": {"kairos": false}})");
	CHECK_THAT(without, Catch::Contains("\"outsourcing\": {\n    \"enabled\": false\n  }"));
}
