#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "vmm/config.h"

using kairos::vmm::Config;
using kairos::vmm::config_to_json;
using kairos::vmm::parse_config;

namespace {

// A folder with a fake kernel and initrd that config paths can point at.
struct ConfigDir {
	ConfigDir()
	{
		path = std::filesystem::temp_directory_path() / ("kairos-config-test-" + std::to_string(::getpid()));
		std::filesystem::create_directories(path);
		std::ofstream(path / "vmlinuz") << "kernel";
		std::ofstream(path / "initrd.img") << "initrd";
	}
	~ConfigDir() { std::filesystem::remove_all(path); }
	std::filesystem::path path;
};

std::string error_of(const std::string &json, const std::filesystem::path &dir)
{
	auto result = parse_config(json, dir);
	REQUIRE_FALSE(result.ok());
	return result.error().message;
}

}  // namespace

TEST_CASE("a minimal config gets the defaults", "[config]")
{
	ConfigDir dir;
	auto config = parse_config(R"({"boot": {"kernel": "vmlinuz"}})", dir.path);
	REQUIRE(config.ok());
	CHECK(config->machine.vcpus == 1);
	CHECK(config->machine.memory_mib == 256);
	CHECK(config->machine.memory_check == Config::Machine::MemoryCheck::Warn);
	CHECK(config->boot.kernel == dir.path / "vmlinuz");
	CHECK(config->boot.initrd.empty());
	CHECK(config->boot.cmdline == kairos::vmm::kDefaultCmdline);
	CHECK(config->console.output == Config::Console::Output::Stdout);
	CHECK(config->console.input_from_stdin);
	CHECK(config->console.max_file_mib == kairos::vmm::kDefaultConsoleFileMib);
	CHECK(config->clock.kvmclock);
	CHECK(config->security.seccomp);
}

TEST_CASE("security.seccomp is a boolean, on unless turned off", "[config]")
{
	ConfigDir dir;
	auto off = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "security": {"seccomp": false}})", dir.path);
	REQUIRE(off.ok());
	CHECK_FALSE(off->security.seccomp);
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "security": {"seccomp": "yes"}})", dir.path) ==
	      "security.seccomp: must be true or false, got the string \"yes\"");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "security": {"landlock": true}})", dir.path) ==
	      "security.landlock: unknown key");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "security": true})", dir.path) ==
	      "security: must be an object, got boolean");
}

TEST_CASE("a full config is read field by field", "[config]")
{
	ConfigDir dir;
	auto config = parse_config(R"({
		"machine": {"vcpus": 4, "memory_mib": 512},
		"boot": {"kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0 quiet"},
		"console": {"output": "guest.log", "input": "none", "max_file_mib": 5},
		"clock": {"kvmclock": false, "refresh_ms": 250},
		"events": {"virtual_timer_hz": 100}
	})",
				   dir.path);
	REQUIRE(config.ok());
	CHECK(config->machine.vcpus == 4);
	CHECK(config->machine.memory_mib == 512);
	CHECK(config->boot.initrd == dir.path / "initrd.img");
	CHECK(config->boot.cmdline == "console=ttyS0 quiet");
	CHECK(config->console.output == Config::Console::Output::File);
	CHECK(config->console.file == dir.path / "guest.log");
	CHECK_FALSE(config->console.input_from_stdin);
	CHECK(config->console.max_file_mib == 5);
	CHECK_FALSE(config->clock.kvmclock);
	CHECK(config->clock.refresh_ms == 250);
	CHECK(config->events.virtual_timer_hz == 100);
	CHECK(config->outsourcing.enabled);
	CHECK(config->outsourcing.max_timers == 65536);
	CHECK(config->outsourcing.priority == kairos::outsourcing::Priority{});
}

TEST_CASE("outsourcing options are read and validated", "[config]")
{
	ConfigDir dir;
	auto config = parse_config(R"({"boot": {"kernel": "vmlinuz"},
		"outsourcing": {"max_timers": 1000, "priority": "fifo:50"}})",
				   dir.path);
	REQUIRE(config.ok());
	CHECK(config->outsourcing.max_timers == 1000);
	CHECK(config->outsourcing.priority ==
	      kairos::outsourcing::Priority{kairos::outsourcing::Priority::Policy::Fifo, 50});
	auto boost = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": {"boost": true}})", dir.path);
	REQUIRE_FALSE(boost.ok());
	CHECK_THAT(boost.error().message, Catch::StartsWith("outsourcing.boost: was removed"));
	auto without_kairos = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "clock": {"kairos": false}})", dir.path);
	REQUIRE(without_kairos.ok());
	CHECK_FALSE(without_kairos->outsourcing.enabled);
}

TEST_CASE("errors name the key's full path and the bad value", "[config]")
{
	ConfigDir dir;
	const auto &d = dir.path;
	CHECK(error_of(R"({"machine": {"vcpus": 0}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.vcpus: must be 1..64, got 0");
	CHECK(error_of(R"({"machine": {"vcpus": 65}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.vcpus: must be 1..64, got 65");
	CHECK(error_of(R"({"machine": {"vcpus": -3}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.vcpus: must be 1..64, got -3");
	CHECK(error_of(R"({"machine": {"vcpus": "two"}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.vcpus: must be an integer, got the string \"two\"");
	CHECK(error_of(R"({"machine": {"memory_mib": 1.5}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.memory_mib: must be an integer, got the number 1.5");
	CHECK(error_of(R"({"machine": {"memory_mib": 16}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.memory_mib: must be 64..65536, got 16");
	// Memory per vCPU: 64 MiB and 1 MiB for each vCPU past the first.
	CHECK(error_of(R"({"machine": {"vcpus": 64, "memory_mib": 64}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.memory_mib: 64 MiB is too little for 64 vCPUs: give at least 127 (64 MiB, and 1 MiB for each "
	      "vCPU past the first)");
	CHECK(error_of(R"({"machine": {"vcpus": 2, "memory_mib": 64}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.memory_mib: 64 MiB is too little for 2 vCPUs: give at least 65 (64 MiB, and 1 MiB for each "
	      "vCPU past the first)");
	CHECK(parse_config(R"({"machine": {"vcpus": 64, "memory_mib": 127}, "boot": {"kernel": "vmlinuz"}})", d).ok());
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": {"guest_wakeups_hz": 10}})", d) ==
	      "outsourcing.guest_wakeups_hz: must be 100..1000000, got 10");
	CHECK(error_of(R"({"machine": {"memory_check": "maybe"}, "boot": {"kernel": "vmlinuz"}})", d) ==
	      "machine.memory_check: must be \"warn\", \"refuse\" or \"off\", got \"maybe\"");
	CHECK(error_of(R"({"machine": {"cpus": 2}, "boot": {"kernel": "vmlinuz"}})", d) == "machine.cpus: unknown key");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "extra": 1})", d) == "extra: unknown key");
	CHECK(error_of(R"({"machine": {}})", d) == "boot: is required (it names the kernel to boot; or give --kernel)");
	CHECK(error_of(R"({"boot": {}})", d) == "boot.kernel: is required");
	CHECK(error_of(R"({"boot": {"kernel": 7}})", d) == "boot.kernel: must be a string, got the integer 7");
	CHECK(error_of(R"({"boot": {"kernel": "missing"}})", d) ==
	      "boot.kernel: " + (d / "missing").string() + ": no such file");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz", "initrd": "nope.img"}})", d) ==
	      "boot.initrd: " + (d / "nope.img").string() + ": no such file");
	CHECK(error_of(R"({"boot": {"kernel": "."}})", d).find("is a directory") != std::string::npos);
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "console": {"input": "tty"}})", d) ==
	      "console.input: must be \"stdin\" or \"none\", got \"tty\"");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "console": {"output": "g.log", "max_file_mib": 0}})", d) ==
	      "console.max_file_mib: must be 1..1048576, got 0");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "console": {"max_file_mib": 8}})", d) ==
	      "console.max_file_mib: applies only when console.output is a file path");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "clock": {"kvmclock": 1}})", d) ==
	      "clock.kvmclock: must be true or false, got the integer 1");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "machine": 3})", d) ==
	      "machine: must be an object, got the integer 3");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "clock": {"refresh_ms": 5}})", d) ==
	      "clock.refresh_ms: must be 10..60000, got 5");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "events": {"virtual_timer_hz": 20000}})", d) ==
	      "events.virtual_timer_hz: must be 0..10000, got 20000");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "events": {"hz": 1}})", d) == "events.hz: unknown key");
	CHECK(error_of(
		      R"({"boot": {"kernel": "vmlinuz"}, "clock": {"kairos": false}, "events": {"virtual_timer_hz": 10}})",
		      d) == "events.virtual_timer_hz: needs clock.kairos (the Kairos device) on");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": {"priority": "fast"}})", d)
		      .rfind("outsourcing.priority: ", 0) == 0);
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": {"max_timers": 0}})", d) ==
	      "outsourcing.max_timers: must be 1..1048576, got 0");
	CHECK(error_of(
		      R"({"boot": {"kernel": "vmlinuz"}, "clock": {"kairos": false}, "outsourcing": {"enabled": true}})",
		      d) == "outsourcing.enabled: needs clock.kairos (the Kairos device) on");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "clock": {"kairos": false},
			   "outsourcing": {"enabled": false, "max_timers": 100}})",
		       d) ==
	      "outsourcing.max_timers: has no effect: outsourcing needs clock.kairos (the Kairos device) on");
	CHECK(error_of("[1, 2]", d) == "the config: must be an object, got array");
	CHECK(error_of("{\"boot\": ", d).rfind("invalid JSON: ", 0) == 0);
}

TEST_CASE("a comment in the config is named as what is wrong", "[config]")
{
	ConfigDir dir;
	std::string error = error_of("{\n  // the kernel\n  \"boot\": {\"kernel\": \"vmlinuz\"}\n}\n", dir.path);
	CHECK_THAT(error, Catch::StartsWith("invalid JSON: ") && Catch::Contains("line 2") &&
				  Catch::EndsWith("comments (// and /* */) are not JSON: remove them"));
	// Other syntax errors do not mention comments.
	CHECK_THAT(error_of("{\"boot\": }", dir.path), !Catch::Contains("comments"));
}

TEST_CASE("absolute paths are kept as they are", "[config]")
{
	ConfigDir dir;
	auto kernel = (dir.path / "vmlinuz").string();
	auto config = parse_config(R"({"boot": {"kernel": ")" + kernel + R"("}})", "/nonexistent");
	REQUIRE(config.ok());
	CHECK(config->boot.kernel == kernel);
}

TEST_CASE("load_config prefixes errors with the file name", "[config]")
{
	ConfigDir dir;
	auto file = dir.path / "vm.json";
	std::ofstream(file) << R"({"machine": {"vcpus": 0}, "boot": {"kernel": "vmlinuz"}})";
	auto config = kairos::vmm::load_config(file);
	REQUIRE_FALSE(config.ok());
	CHECK(config.error().message == file.string() + ": machine.vcpus: must be 1..64, got 0");

	auto missing = kairos::vmm::load_config(dir.path / "absent.json");
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message.find("absent.json") != std::string::npos);

	auto directory = kairos::vmm::load_config(dir.path);
	REQUIRE_FALSE(directory.ok());
	CHECK(directory.error().message == dir.path.string() + ": is a directory, not a JSON config file");
}

TEST_CASE("outsourcing.window and advance_us: defaults, values, errors", "[config]")
{
	using kairos::outsourcing::WindowConfig;
	ConfigDir dir;
	auto defaults = parse_config(R"({"boot": {"kernel": "vmlinuz"}})", dir.path);
	REQUIRE(defaults.ok());
	CHECK(defaults->outsourcing.window.policy == WindowConfig::Policy::Deadline);
	CHECK(defaults->outsourcing.window.runtime_ns == 1'000'000);
	CHECK(defaults->outsourcing.window.period_ns == 10'000'000);
	CHECK_FALSE(defaults->outsourcing.window.lead_ns.has_value());  // auto
	CHECK(defaults->outsourcing.window.timeout_ns == 5'000'000);
	CHECK_FALSE(defaults->outsourcing.advance_ns.has_value());  // auto

	auto set = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": {"advance_us": 40,
		"window": {"policy": "fifo", "runtime_us": 300, "period_us": 2000, "lead_us": 150,
		           "timeout_us": 900, "fifo_priority": 7}}})",
				dir.path);
	REQUIRE(set.ok());
	const WindowConfig &window = set->outsourcing.window;
	CHECK(window.policy == WindowConfig::Policy::Fifo);
	CHECK(window.runtime_ns == 300'000);
	CHECK(window.period_ns == 2'000'000);
	CHECK(window.lead_ns == 150'000u);
	CHECK(window.timeout_ns == 900'000);
	CHECK(window.fifo_priority == 7);
	CHECK(set->outsourcing.advance_ns == 40'000u);
	auto automatic = parse_config(
		R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": {"advance_us": "auto", "window": {"lead_us": "auto"}}})",
		dir.path);
	REQUIRE(automatic.ok());
	CHECK_FALSE(automatic->outsourcing.advance_ns.has_value());

	const auto &d = dir.path;
	auto with = [](const std::string &outsourcing) {
		return R"({"boot": {"kernel": "vmlinuz"}, "outsourcing": )" + outsourcing + "}";
	};
	CHECK(error_of(with(R"({"window": {"policy": "rt"}})"), d) ==
	      R"(outsourcing.window.policy: must be "deadline", "fifo" or "off", got "rt")");
	CHECK(error_of(with(R"({"window": {"runtime_us": 9001}})"), d) ==
	      "outsourcing.window.runtime_us: must be at most 90% of period_us (10000), got 9001");
	CHECK(error_of(with(R"({"window": {"period_us": 50}})"), d) ==
	      "outsourcing.window.period_us: must be 100..4000000, got 50");
	CHECK(error_of(with(R"({"window": {"lead_us": "soon"}})"), d) ==
	      R"(outsourcing.window.lead_us: must be "auto" or an integer 0..100000, got "soon")");
	CHECK(error_of(with(R"({"window": {"lead_us": 1.5}})"), d) ==
	      R"(outsourcing.window.lead_us: must be "auto" or an integer 0..100000, got the number 1.5)");
	CHECK(error_of(with(R"({"window": {"timeout_us": 0}})"), d) ==
	      "outsourcing.window.timeout_us: must be 100..1000000, got 0");
	CHECK(error_of(with(R"({"window": {"fifo_priority": 100}})"), d) ==
	      "outsourcing.window.fifo_priority: must be 1..99, got 100");
	CHECK(error_of(with(R"({"window": {"budget": 1}})"), d) == "outsourcing.window.budget: unknown key");
	CHECK(error_of(with(R"({"advance_us": 501})"), d) == "outsourcing.advance_us: must be 0..500, got 501");
	CHECK(error_of(with(R"({"window": []})"), d) == "outsourcing.window: must be an object, got array");
}

TEST_CASE("drives: defaults, values, and errors naming the drive's key", "[config]")
{
	ConfigDir dir;
	auto none = parse_config(R"({"boot": {"kernel": "vmlinuz"}})", dir.path);
	REQUIRE(none.ok());
	CHECK(none->drives.empty());

	auto config = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "drives": [
		{"id": "root", "path": "rootfs.ext4"},
		{"id": "data", "path": "/images/data.img", "read_only": true, "cache": "none"}]})",
				   dir.path);
	REQUIRE(config.ok());
	REQUIRE(config->drives.size() == 2);
	CHECK(config->drives[0].id == "root");
	CHECK(config->drives[0].path == dir.path / "rootfs.ext4");  // relative to the config's folder
	CHECK_FALSE(config->drives[0].read_only);
	CHECK(config->drives[0].cache == Config::Drive::Cache::Writeback);
	CHECK(config->drives[1].path == "/images/data.img");
	CHECK(config->drives[1].read_only);
	CHECK(config->drives[1].cache == Config::Drive::Cache::None);

	auto with = [](const std::string &drives) {
		return R"({"boot": {"kernel": "vmlinuz"}, "drives": )" + drives + "}";
	};
	CHECK(error_of(with(R"({"id": "a"})"), dir.path) == "drives: must be an array, got object");
	CHECK(error_of(with(R"([{"path": "a.img"}])"), dir.path) == "drives[0].id: is required");
	CHECK(error_of(with(R"([{"id": "a"}])"), dir.path) == "drives[0].path: is required");
	CHECK(error_of(with(R"([{"id": "a", "path": ""}])"), dir.path) == "drives[0].path: must not be empty");
	CHECK(error_of(with(R"([{"id": "", "path": "a.img"}])"), dir.path) ==
	      "drives[0].id: must be 1..20 bytes, got \"\"");
	CHECK(error_of(with(R"([{"id": "abcdefghijklmnopqrstu", "path": "a.img"}])"), dir.path) ==
	      "drives[0].id: must be 1..20 bytes, got \"abcdefghijklmnopqrstu\"");
	CHECK(error_of(with(R"([{"id": "a", "path": "a.img"}, {"id": "a", "path": "b.img"}])"), dir.path) ==
	      "drives[1].id: \"a\" is used by another drive");
	CHECK(error_of(with(R"([{"id": "a", "path": "a.img"}, {"id": "b", "path": "b.img", "cache": "direct"}])"),
		       dir.path) == "drives[1].cache: expected \"none\" or \"writeback\", got \"direct\"");
	CHECK(error_of(with(R"([{"id": "a", "path": "a.img", "read_only": "yes"}])"), dir.path) ==
	      "drives[0].read_only: must be true or false, got the string \"yes\"");
	CHECK(error_of(with(R"([{"id": "a", "path": "a.img", "serial": "x"}])"), dir.path) ==
	      "drives[0].serial: unknown key");
	CHECK(error_of(with(R"([7])"), dir.path) == "drives[0]: must be an object, got the integer 7");

	std::string nine = "[";
	for (int i = 0; i < 9; ++i)
		nine += (i ? ", " : "") + std::string(R"({"id": "d)") + std::to_string(i) + R"(", "path": "d.img"})";
	CHECK(error_of(with(nine + "]"), dir.path) == "drives: at most 8 drives (one virtio-mmio slot each), got 9");

	// The guest could not find them: refused rather than silently missing.
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz", "cmdline": "console=ttyS0 acpi=off"},
			   "drives": [{"id": "a", "path": "a.img"}]})",
		       dir.path) == "boot.cmdline: acpi=off hides the virtio devices (drives, network, vsock): the "
				    "guest finds virtio-mmio devices only in the ACPI DSDT");
	CHECK(parse_config(R"({"boot": {"kernel": "vmlinuz", "cmdline": "console=ttyS0 acpi=off"}})", dir.path).ok());
}

TEST_CASE("network: TAP names, MAC addresses, and errors naming the key", "[config]")
{
	ConfigDir dir;
	auto none = parse_config(R"({"boot": {"kernel": "vmlinuz"}})", dir.path);
	REQUIRE(none.ok());
	CHECK(none->network.empty());

	auto config = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "network": [
		{"id": "net0", "tap": "ktap0", "mac": "52:54:00:AB:cd:01"},
		{"id": "net1", "tap": "ktap1"}]})",
				   dir.path);
	REQUIRE(config.ok());
	REQUIRE(config->network.size() == 2);
	CHECK(config->network[0].tap == "ktap0");
	REQUIRE(config->network[0].mac);
	CHECK(*config->network[0].mac == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xab, 0xcd, 0x01});
	CHECK_FALSE(config->network[1].mac);  // generated when the device opens
	// The effective config writes the MAC back as it reads it.
	CHECK(config_to_json(*config).find(R"("mac": "52:54:00:ab:cd:01")") != std::string::npos);

	auto with = [](const std::string &network) {
		return R"({"boot": {"kernel": "vmlinuz"}, "network": )" + network + "}";
	};
	CHECK(error_of(with(R"({"id": "a"})"), dir.path) == "network: must be an array, got object");
	CHECK(error_of(with(R"([{"id": "a"}])"), dir.path) == "network[0].tap: is required");
	CHECK(error_of(with(R"([{"id": "a", "tap": ""}])"), dir.path) ==
	      "network[0].tap: must be 1..15 bytes (an interface name), got \"\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "abcdefghijklmnop"}])"), dir.path) ==
	      "network[0].tap: must be 1..15 bytes (an interface name), got \"abcdefghijklmnop\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "a/b"}])"), dir.path) ==
	      "network[0].tap: \"a/b\" is not an interface name");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0"}, {"id": "b", "tap": "t0"}])"), dir.path) ==
	      "network[1].tap: \"t0\" is used by another network device");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0", "mac": "52:54:00:12:34"}])"), dir.path) ==
	      "network[0].mac: expected six hex pairs like \"52:54:00:12:34:56\", got \"52:54:00:12:34\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0", "mac": "52-54-00-12-34-56"}])"), dir.path) ==
	      "network[0].mac: expected six hex pairs like \"52:54:00:12:34:56\", got \"52-54-00-12-34-56\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0", "mac": "52:54:00:12:34:zz"}])"), dir.path) ==
	      "network[0].mac: expected six hex pairs like \"52:54:00:12:34:56\", got \"52:54:00:12:34:zz\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0", "mac": "01:00:5e:00:00:01"}])"), dir.path) ==
	      "network[0].mac: is a multicast address (the first byte is odd), got \"01:00:5e:00:00:01\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0", "mac": "00:00:00:00:00:00"}])"), dir.path) ==
	      "network[0].mac: must not be all zeros, got \"00:00:00:00:00:00\"");
	CHECK(error_of(with(R"([{"id": "a", "tap": "t0", "vhost": true}])"), dir.path) ==
	      "network[0].vhost: unknown key");
	// One id space for every device: ids name stats and threads.
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "drives": [{"id": "a", "path": "a.img"}],
			   "network": [{"id": "a", "tap": "t0"}]})",
		       dir.path) == "network[0].id: \"a\" is used by another device");
}

TEST_CASE("vsock: the guest's cid, and the slots drives, network and vsock share", "[config]")
{
	ConfigDir dir;
	auto none = parse_config(R"({"boot": {"kernel": "vmlinuz"}})", dir.path);
	REQUIRE(none.ok());
	CHECK_FALSE(none->vsock);
	CHECK(none->virtio_device_count() == 0);

	auto config = parse_config(R"({"boot": {"kernel": "vmlinuz"}, "vsock": {"cid": 42}})", dir.path);
	REQUIRE(config.ok());
	REQUIRE(config->vsock);
	CHECK(config->vsock->cid == 42);
	CHECK(config->virtio_device_count() == 1);
	CHECK(config_to_json(*config).find(R"("cid": 42)") != std::string::npos);

	auto with = [](const std::string &vsock) {
		return R"({"boot": {"kernel": "vmlinuz"}, "vsock": )" + vsock + "}";
	};
	CHECK(error_of(with("{}"), dir.path) == "vsock.cid: is required (3..4294967294, the guest's address)");
	CHECK(error_of(with(R"({"cid": 2})"), dir.path) == "vsock.cid: must be 3..4294967294, got 2");
	CHECK(error_of(with(R"({"cid": 4294967295})"), dir.path) == "vsock.cid: must be 3..4294967294, got 4294967295");
	CHECK(error_of(with(R"({"cid": "3"})"), dir.path) == "vsock.cid: must be an integer, got the string \"3\"");
	CHECK(error_of(with(R"({"cid": 3, "port": 1})"), dir.path) == "vsock.port: unknown key");
	CHECK(error_of(with("3"), dir.path) == "vsock: must be an object, got the integer 3");

	// Eight virtio-mmio slots for all of them.
	std::string drives = "[";
	for (int i = 0; i < 7; ++i)
		drives += (i ? ", " : "") + std::string(R"({"id": "d)") + std::to_string(i) + R"(", "path": "d.img"})";
	drives += "]";
	CHECK(parse_config(R"({"boot": {"kernel": "vmlinuz"}, "vsock": {"cid": 3}, "drives": )" + drives + "}",
			   dir.path)
		      .ok());
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz"}, "vsock": {"cid": 3}, "drives": )" + drives +
			       R"(, "network": [{"id": "n", "tap": "t0"}]})",
		       dir.path) ==
	      "network: drives, network and vsock together take 9 virtio-mmio slots; there are 8");
	CHECK(error_of(R"({"boot": {"kernel": "vmlinuz", "cmdline": "acpi=off"}, "vsock": {"cid": 3}})", dir.path) ==
	      "boot.cmdline: acpi=off hides the virtio devices (drives, network, vsock): the guest finds virtio-mmio "
	      "devices only in the ACPI DSDT");
}
