#include "vmm/config.h"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "outsourcing/priority.h"

namespace kairos::vmm {
namespace {

using nlohmann::json;

// Thrown only inside parse_config, which turns it into an Error.
struct ConfigError {
	std::string message;
};

// One JSON object at a dotted path, read key by key; whatever is left
// unread at the end is an unknown key.
class ObjectReader {
public:
	ObjectReader(const json &object, std::string path) : object_(object), path_(std::move(path))
	{
		if (!object_.is_object())
			fail(path_.empty() ? "the config" : path_, "must be an object, got " + type_of(object_));
	}

	bool has(const std::string &key) const { return object_.contains(key); }

	const json *get(const std::string &key)
	{
		seen_.insert(key);
		auto it = object_.find(key);
		return it == object_.end() ? nullptr : &*it;
	}

	std::string path_of(const std::string &key) const { return path_.empty() ? key : path_ + "." + key; }

	uint64_t integer(const std::string &key, uint64_t min, uint64_t max, uint64_t fallback)
	{
		const json *value = get(key);
		if (!value)
			return fallback;
		if (!value->is_number_integer())
			fail(path_of(key), "must be an integer, got " + type_of(*value));
		if (value->is_number_unsigned() ? value->get<uint64_t>() < min || value->get<uint64_t>() > max
						: value->get<int64_t>() < static_cast<int64_t>(min) ||
							  value->get<int64_t>() > static_cast<int64_t>(max))
			fail(path_of(key), fmt::format("must be {}..{}, got {}", min, max, value->dump()));
		return value->get<uint64_t>();
	}

	bool boolean(const std::string &key, bool fallback)
	{
		const json *value = get(key);
		if (!value)
			return fallback;
		if (!value->is_boolean())
			fail(path_of(key), "must be true or false, got " + type_of(*value));
		return value->get<bool>();
	}

	std::string string(const std::string &key, const std::string &fallback)
	{
		const json *value = get(key);
		if (!value)
			return fallback;
		if (!value->is_string())
			fail(path_of(key), "must be a string, got " + type_of(*value));
		return value->get<std::string>();
	}

	std::string required_string(const std::string &key)
	{
		if (!has(key))
			fail(path_of(key), "is required");
		return string(key, "");
	}

	// "auto" (nullopt) or an integer in min..max.
	std::optional<uint64_t> auto_or_integer(const std::string &key, uint64_t min, uint64_t max,
						std::optional<uint64_t> fallback)
	{
		const json *value = has(key) ? &object_.at(key) : nullptr;
		if (value && value->is_string()) {
			get(key);
			if (value->get<std::string>() != "auto")
				fail(path_of(key), fmt::format("must be \"auto\" or an integer {}..{}, got {}", min,
							       max, value->dump()));
			return std::nullopt;
		}
		if (value && !value->is_number_integer())
			fail(path_of(key),
			     fmt::format("must be \"auto\" or an integer {}..{}, got {}", min, max, type_of(*value)));
		if (!value) {
			get(key);
			return fallback;
		}
		return integer(key, min, max, 0);
	}

	ObjectReader object(const std::string &key)
	{
		static const json kEmpty = json::object();
		const json *value = get(key);
		return ObjectReader(value ? *value : kEmpty, path_of(key));
	}

	// The first key present other than `except` (keys in name order).
	std::optional<std::string> first_key_except(const std::string &except) const
	{
		for (const auto &item : object_.items())
			if (item.key() != except)
				return path_of(item.key());
		return std::nullopt;
	}

	// Call after reading every known key.
	void reject_unknown_keys() const
	{
		for (const auto &item : object_.items())
			if (!seen_.count(item.key()))
				fail(path_of(item.key()), "unknown key");
	}

	[[noreturn]] static void fail(const std::string &path, const std::string &what)
	{
		throw ConfigError{path + ": " + what};
	}

	static std::string type_of(const json &value)
	{
		if (value.is_number_integer())
			return "the integer " + value.dump();
		if (value.is_number())
			return "the number " + value.dump();
		if (value.is_string())
			return "the string " + value.dump();
		return std::string(value.type_name());
	}

private:
	const json &object_;
	std::string path_;
	std::set<std::string> seen_;
};

std::filesystem::path readable_file(ObjectReader &reader, const std::string &key, const std::string &value,
				    const std::filesystem::path &base_dir)
{
	if (value.empty())
		ObjectReader::fail(reader.path_of(key), "must not be empty");
	std::filesystem::path path = value;
	if (path.is_relative())
		path = base_dir / path;
	std::error_code error;
	if (!std::filesystem::exists(path, error))
		ObjectReader::fail(reader.path_of(key), path.string() + ": no such file");
	if (std::filesystem::is_directory(path, error))
		ObjectReader::fail(reader.path_of(key), path.string() + ": is a directory");
	if (access(path.c_str(), R_OK) != 0)
		ObjectReader::fail(reader.path_of(key), path.string() + ": not readable (permission denied)");
	return path;
}

// outsourcing.window and outsourcing.advance_us (DESIGN.md 5; the units
// are microseconds in the file, nanoseconds inside).
void parse_window(ObjectReader &outsourcing, Config::Outsourcing &out)
{
	constexpr uint64_t kUs = 1000;
	ObjectReader window = outsourcing.object("window");
	auto policy = kairos::outsourcing::parse_window_policy(window.string("policy", "deadline"));
	if (!policy)
		ObjectReader::fail("outsourcing.window.policy", policy.error().message);
	out.window.policy = *policy;
	// SCHED_DEADLINE takes periods of 100 us .. ~4 s (kernel/sched/deadline.c).
	uint64_t period_us = window.integer("period_us", kMinWindowPeriodUs, kMaxWindowPeriodUs, 10000);
	uint64_t runtime_us = window.integer("runtime_us", kMinWindowRuntimeUs, kMaxWindowPeriodUs, 1000);
	// Bounded: a guest may take at most 90% of a CPU per vCPU at raised
	// priority (the default is 10%); the rest is always left to the host.
	if (runtime_us * 10 > period_us * 9)
		ObjectReader::fail("outsourcing.window.runtime_us",
				   fmt::format("must be at most 90% of period_us ({}), got {}", period_us, runtime_us));
	out.window.period_ns = period_us * kUs;
	out.window.runtime_ns = runtime_us * kUs;
	auto lead_us = window.auto_or_integer("lead_us", 0, kMaxWindowLeadUs, std::nullopt);
	out.window.lead_ns = lead_us ? std::optional<uint64_t>(*lead_us * kUs) : std::nullopt;
	out.window.timeout_ns = window.integer("timeout_us", kMinWindowTimeoutUs, kMaxWindowTimeoutUs, 5000) * kUs;
	out.window.fifo_priority = static_cast<int>(window.integer("fifo_priority", 1, 99, 40));
	window.reject_unknown_keys();

	auto advance_us = outsourcing.auto_or_integer("advance_us", 0, KAIROS_MAX_ADVANCE_NS / kUs, std::nullopt);
	out.advance_ns = advance_us ? std::optional<uint64_t>(*advance_us * kUs) : std::nullopt;
}

bool has_cmdline_word(const std::string &cmdline, std::string_view word)
{
	std::istringstream words(cmdline);
	std::string each;
	while (words >> each)
		if (each == word)
			return true;
	return false;
}

// drives: [{"id", "path", "read_only", "cache"}]. Whether the image can be
// opened and locked is the preflight's (vmm/preflight.h), which opens it
// as the device will.
std::vector<Config::Drive> parse_drives(const json *value, const std::filesystem::path &base_dir)
{
	std::vector<Config::Drive> drives;
	if (!value)
		return drives;
	if (!value->is_array())
		ObjectReader::fail("drives", "must be an array, got " + ObjectReader::type_of(*value));
	if (value->size() > kMaxDrives)
		ObjectReader::fail("drives", fmt::format("at most {} drives (one virtio-mmio slot each), got {}",
							 kMaxDrives, value->size()));
	std::set<std::string> ids;
	for (size_t index = 0; index < value->size(); ++index) {
		ObjectReader reader((*value)[index], fmt::format("drives[{}]", index));
		Config::Drive drive;
		drive.id = reader.required_string("id");
		if (drive.id.empty() || drive.id.size() > kMaxDriveIdBytes)
			ObjectReader::fail(reader.path_of("id"),
					   fmt::format("must be 1..{} bytes, got \"{}\"", kMaxDriveIdBytes, drive.id));
		if (!ids.insert(drive.id).second)
			ObjectReader::fail(reader.path_of("id"),
					   fmt::format("\"{}\" is used by another drive", drive.id));
		std::string path = reader.required_string("path");
		if (path.empty())
			ObjectReader::fail(reader.path_of("path"), "must not be empty");
		drive.path = std::filesystem::path(path).is_relative() ? base_dir / path : std::filesystem::path(path);
		drive.read_only = reader.boolean("read_only", false);
		std::string cache = reader.string("cache", "writeback");
		if (cache == "none")
			drive.cache = Config::Drive::Cache::None;
		else if (cache != "writeback")
			ObjectReader::fail(reader.path_of("cache"),
					   "expected \"none\" or \"writeback\", got \"" + cache + "\"");
		reader.reject_unknown_keys();
		drives.push_back(std::move(drive));
	}
	return drives;
}

// "52:54:00:12:34:56": six hex pairs, a unicast address (the low bit of
// the first byte clear, IEEE 802) other than all zeros.
std::array<uint8_t, 6> parse_mac(const std::string &path, const std::string &text)
{
	std::array<uint8_t, 6> mac{};
	const auto refuse = [&](const char *why) {
		ObjectReader::fail(path, fmt::format("{}, got \"{}\"", why, text));
	};
	if (text.size() != 17)
		refuse("expected six hex pairs like \"52:54:00:12:34:56\"");
	for (size_t byte = 0; byte < mac.size(); ++byte) {
		const size_t at = byte * 3;
		if (byte > 0 && text[at - 1] != ':')
			refuse("expected six hex pairs like \"52:54:00:12:34:56\"");
		if (!std::isxdigit(static_cast<unsigned char>(text[at])) ||
		    !std::isxdigit(static_cast<unsigned char>(text[at + 1])))
			refuse("expected six hex pairs like \"52:54:00:12:34:56\"");
		mac[byte] = static_cast<uint8_t>(std::stoul(text.substr(at, 2), nullptr, 16));
	}
	if (mac[0] & 1)
		refuse("is a multicast address (the first byte is odd)");
	if (mac == std::array<uint8_t, 6>{})
		refuse("must not be all zeros");
	return mac;
}

// An interface name the kernel takes (dev_valid_name): 1..15 bytes, no
// '/', ':' or white space, not "." or "..".
void check_tap_name(const std::string &path, const std::string &name)
{
	if (name.empty() || name.size() > kMaxTapNameBytes)
		ObjectReader::fail(path, fmt::format("must be 1..{} bytes (an interface name), got \"{}\"",
						     kMaxTapNameBytes, name));
	if (name == "." || name == ".." || name.find_first_of("/: \t\n") != std::string::npos)
		ObjectReader::fail(path, fmt::format("\"{}\" is not an interface name", name));
}

// network: [{"id", "tap", "mac"}]. Whether the TAP interface exists and can
// be opened is the preflight's (vmm/preflight.h).
std::vector<Config::Network> parse_network(const json *value, const std::vector<Config::Drive> &drives)
{
	std::vector<Config::Network> network;
	if (!value)
		return network;
	if (!value->is_array())
		ObjectReader::fail("network", "must be an array, got " + ObjectReader::type_of(*value));
	std::set<std::string> ids, taps;
	for (const auto &drive : drives)
		ids.insert(drive.id);
	for (size_t index = 0; index < value->size(); ++index) {
		ObjectReader reader((*value)[index], fmt::format("network[{}]", index));
		Config::Network net;
		net.id = reader.required_string("id");
		if (net.id.empty() || net.id.size() > kMaxDriveIdBytes)
			ObjectReader::fail(reader.path_of("id"),
					   fmt::format("must be 1..{} bytes, got \"{}\"", kMaxDriveIdBytes, net.id));
		if (!ids.insert(net.id).second)
			ObjectReader::fail(reader.path_of("id"),
					   fmt::format("\"{}\" is used by another device", net.id));
		net.tap = reader.required_string("tap");
		check_tap_name(reader.path_of("tap"), net.tap);
		if (!taps.insert(net.tap).second)
			ObjectReader::fail(reader.path_of("tap"),
					   fmt::format("\"{}\" is used by another network device", net.tap));
		if (reader.has("mac"))
			net.mac = parse_mac(reader.path_of("mac"), reader.required_string("mac"));
		reader.reject_unknown_keys();
		network.push_back(std::move(net));
	}
	return network;
}

// vsock: {"cid"}.
std::optional<Config::Vsock> parse_vsock(ObjectReader &top)
{
	if (!top.has("vsock"))
		return std::nullopt;
	ObjectReader reader = top.object("vsock");
	if (!reader.has("cid"))
		ObjectReader::fail("vsock.cid", fmt::format("is required ({}..{}, the guest's address)", kMinGuestCid,
							    kMaxGuestCid));
	Config::Vsock vsock;
	vsock.cid = static_cast<uint32_t>(reader.integer("cid", kMinGuestCid, kMaxGuestCid, kMinGuestCid));
	reader.reject_unknown_keys();
	return vsock;
}

Config parse_or_throw(const json &root, const std::filesystem::path &base_dir)
{
	Config config;
	ObjectReader top(root, "");

	ObjectReader machine = top.object("machine");
	config.machine.vcpus = static_cast<uint32_t>(machine.integer("vcpus", 1, kMaxVcpus, 1));
	config.machine.memory_mib = machine.integer("memory_mib", kMinMemoryMib, kMaxMemoryMib, 256);
	std::string memory_check = machine.string("memory_check", "warn");
	if (memory_check == "warn")
		config.machine.memory_check = Config::Machine::MemoryCheck::Warn;
	else if (memory_check == "refuse")
		config.machine.memory_check = Config::Machine::MemoryCheck::Refuse;
	else if (memory_check == "off")
		config.machine.memory_check = Config::Machine::MemoryCheck::Off;
	else
		ObjectReader::fail("machine.memory_check",
				   "must be \"warn\", \"refuse\" or \"off\", got \"" + memory_check + "\"");
	machine.reject_unknown_keys();
	const uint64_t least_mib = kMinMemoryMib + kMemoryMibPerExtraVcpu * (config.machine.vcpus - 1);
	if (config.machine.memory_mib < least_mib)
		ObjectReader::fail(
			"machine.memory_mib",
			fmt::format("{} MiB is too little for {} vCPUs: give at least {} ({} MiB, and {} MiB "
				    "for each vCPU past the first)",
				    config.machine.memory_mib, config.machine.vcpus, least_mib, kMinMemoryMib,
				    kMemoryMibPerExtraVcpu));

	if (!top.has("boot"))
		ObjectReader::fail("boot", "is required (it names the kernel to boot; or give --kernel)");
	ObjectReader boot = top.object("boot");
	config.boot.kernel = readable_file(boot, "kernel", boot.required_string("kernel"), base_dir);
	if (boot.has("initrd"))
		config.boot.initrd = readable_file(boot, "initrd", boot.string("initrd", ""), base_dir);
	config.boot.cmdline = boot.string("cmdline", kDefaultCmdline);
	boot.reject_unknown_keys();

	ObjectReader console = top.object("console");
	std::string output = console.string("output", "stdout");
	if (output == "stdout") {
		config.console.output = Config::Console::Output::Stdout;
	} else if (output == "none") {
		config.console.output = Config::Console::Output::None;
	} else if (output.empty()) {
		ObjectReader::fail("console.output", "must be \"stdout\", \"none\" or a file path");
	} else {
		config.console.output = Config::Console::Output::File;
		config.console.file =
			std::filesystem::path(output).is_relative() ? base_dir / output : std::filesystem::path(output);
	}
	if (console.has("max_file_mib") && config.console.output != Config::Console::Output::File)
		ObjectReader::fail("console.max_file_mib", "applies only when console.output is a file path");
	config.console.max_file_mib = console.integer("max_file_mib", 1, kMaxConsoleFileMib, kDefaultConsoleFileMib);
	std::string input = console.string("input", "stdin");
	if (input != "stdin" && input != "none")
		ObjectReader::fail("console.input", "must be \"stdin\" or \"none\", got \"" + input + "\"");
	config.console.input_from_stdin = input == "stdin";
	console.reject_unknown_keys();

	ObjectReader clock = top.object("clock");
	config.clock.kvmclock = clock.boolean("kvmclock", true);
	config.clock.kairos = clock.boolean("kairos", true);
	config.clock.refresh_ms =
		static_cast<uint32_t>(clock.integer("refresh_ms", kMinRefreshMs, kMaxRefreshMs, 1000));
	clock.reject_unknown_keys();

	ObjectReader events = top.object("events");
	config.events.virtual_timer_hz =
		static_cast<uint32_t>(events.integer("virtual_timer_hz", 0, kMaxVirtualTimerHz, 0));
	events.reject_unknown_keys();
	if (config.events.virtual_timer_hz > 0 && !config.clock.kairos)
		ObjectReader::fail("events.virtual_timer_hz", "needs clock.kairos (the Kairos device) on");

	ObjectReader outsourcing = top.object("outsourcing");
	config.outsourcing.enabled = outsourcing.boolean("enabled", config.clock.kairos);
	config.outsourcing.max_timers = outsourcing.integer("max_timers", 1, 1 << 20, 65536);
	config.outsourcing.guest_wakeups_hz =
		outsourcing.integer("guest_wakeups_hz", 100, 1'000'000, kairos::outsourcing::kDefaultGuestWakeupsHz);
	auto priority = kairos::outsourcing::parse_priority(outsourcing.string("priority", "normal"));
	if (!priority)
		throw ConfigError{priority.error().message};
	config.outsourcing.priority = *priority;
	parse_window(outsourcing, config.outsourcing);
	// Measured and removed (README, Results): say so rather than "unknown key".
	if (outsourcing.has("boost"))
		ObjectReader::fail("outsourcing.boost",
				   "was removed: lending the timer thread's priority to the vCPUs never beat "
				   "the best configuration without it (README, Results)");
	outsourcing.reject_unknown_keys();
	if (config.outsourcing.enabled && !config.clock.kairos && outsourcing.has("enabled"))
		ObjectReader::fail("outsourcing.enabled", "needs clock.kairos (the Kairos device) on");
	config.outsourcing.enabled = config.outsourcing.enabled && config.clock.kairos;
	// A setting that would be silently ignored is refused (issue 11).
	if (!config.clock.kairos)
		if (auto key = outsourcing.first_key_except("enabled"))
			ObjectReader::fail(*key,
					   "has no effect: outsourcing needs clock.kairos (the Kairos device) on");

	config.drives = parse_drives(top.get("drives"), base_dir);
	config.network = parse_network(top.get("network"), config.drives);
	config.vsock = parse_vsock(top);
	if (config.virtio_device_count() > layout::kVirtioMmioSlots)
		ObjectReader::fail(config.network.empty() ? "vsock" : "network",
				   fmt::format("drives, network and vsock together take {} virtio-mmio slots; "
					       "there are {}",
					       config.virtio_device_count(), layout::kVirtioMmioSlots));
	// Linux finds virtio-mmio devices in the DSDT or on the command line
	// (virtio_mmio.device=), which Debian's kernel does not build
	// (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES): the devices would be silently
	// missing (issue 11's rule: refuse what would be ignored).
	if (config.virtio_device_count() > 0 && has_cmdline_word(config.boot.cmdline, "acpi=off"))
		ObjectReader::fail("boot.cmdline", "acpi=off hides the virtio devices (drives, network, vsock): the "
						   "guest finds virtio-mmio devices only in the ACPI DSDT");

	ObjectReader security = top.object("security");
	config.security.seccomp = security.boolean("seccomp", true);
	security.reject_unknown_keys();

	top.reject_unknown_keys();
	return config;
}

// Puts the flags' values into the config file's JSON, over its own, so
// that they are checked as the file's are.
void merge_flags(json &root, const ConfigFlags &flags)
{
	if (!root.is_object())
		return;  // the parser says what is wrong with the file
	auto set = [&root](const char *section, const char *key, json value) {
		json &object = root[section];
		if (object.is_null())
			object = json::object();
		if (object.is_object())  // else the parser names the file's mistake
			object[key] = std::move(value);
	};
	// The user typed them in the current directory: resolved there, so the
	// config file's folder (base_dir) never applies to them.
	auto from_here = [](const std::string &text) {
		std::error_code error;
		std::filesystem::path path = std::filesystem::absolute(text, error);
		return text.empty() || error ? text : path.string();
	};
	if (flags.kernel)
		set("boot", "kernel", from_here(*flags.kernel));
	if (flags.initrd)
		set("boot", "initrd", from_here(*flags.initrd));
	if (flags.cmdline)
		set("boot", "cmdline", *flags.cmdline);
	if (flags.vcpus)
		set("machine", "vcpus", *flags.vcpus);
	if (flags.memory_mib)
		set("machine", "memory_mib", *flags.memory_mib);
}

Result<json> parse_json(const std::string &json_text)
{
	try {
		return json::parse(json_text);
	} catch (const json::parse_error &error) {
		// nlohmann's message starts with "[json.exception.parse_error.101] "
		std::string what = error.what();
		auto bracket = what.find("] ");
		std::string message = bracket == std::string::npos ? what : what.substr(bracket + 2);
		// Parses once comments are skipped: they were the only trouble.
		bool only_comments = !json::parse(json_text, nullptr, false, true).is_discarded();
		if (only_comments)
			return make_error("invalid JSON: {}; comments (// and /* */) are not JSON: remove them",
					  message);
		return make_error("invalid JSON: {}", message);
	}
}

Result<Config> parse_root(const json &root, const std::filesystem::path &base_dir)
{
	try {
		return parse_or_throw(root, base_dir);
	} catch (const ConfigError &error) {
		return Error{error.message};
	} catch (const json::exception &error) {
		return make_error("config: {}", error.what());
	}
}

Result<std::string> read_config_file(const std::filesystem::path &file)
{
	// An ifstream opens a directory and reads nothing: the user would get
	// a JSON parse error about an empty input (issue 11).
	std::error_code error;
	if (std::filesystem::is_directory(file, error))
		return make_error("{}: is a directory, not a JSON config file", file.string());
	std::ifstream in(file);
	if (!in)
		return errno_error(file.string());
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

}  // namespace

bool ConfigFlags::sets(std::string_view key) const
{
	if (key == "boot.kernel")
		return kernel.has_value();
	if (key == "boot.initrd")
		return initrd.has_value();
	if (key == "boot.cmdline")
		return cmdline.has_value();
	if (key == "machine.vcpus")
		return vcpus.has_value();
	return key == "machine.memory_mib" && memory_mib.has_value();
}

Result<Config> parse_config(const std::string &json_text, const std::filesystem::path &base_dir)
{
	KAIROS_TRY_ASSIGN(root, parse_json(json_text));
	return parse_root(root, base_dir);
}

Result<Config> load_config(const std::filesystem::path &file)
{
	return load_config(std::optional(file), ConfigFlags{});
}

Result<Config> load_config(const std::optional<std::filesystem::path> &file, const ConfigFlags &flags)
{
	json root = json::object();
	std::filesystem::path base_dir;  // without a file, every path is a flag's, already absolute
	if (file) {
		auto text = read_config_file(*file);
		if (!text)
			return text.error();
		auto parsed = parse_json(*text);
		if (!parsed)
			return Error{file->string() + ": " + parsed.error().message};
		root = std::move(*parsed);
		base_dir = std::filesystem::absolute(*file).parent_path();
	}
	merge_flags(root, flags);
	auto config = parse_root(root, base_dir);
	if (config)
		return config;
	std::string message = name_flag_in(config.error().message, flags);
	if (!file || message != config.error().message)
		return Error{message};
	return Error{file->string() + ": " + message};
}

std::string name_flag_in(const std::string &message, const ConfigFlags &flags)
{
	for (const auto &[flag, key] : kConfigFlags) {
		std::string_view name = key;
		bool about_key = message.starts_with(name) && message.size() > name.size() &&
				 (message[name.size()] == ':' || message[name.size()] == ' ');
		if (about_key && flags.sets(name))
			return flag + message.substr(name.size());
	}
	return message;
}

}  // namespace kairos::vmm
