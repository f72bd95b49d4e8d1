// The effective configuration as a config file (kairos check): the same
// keys, every one with its value, so the output can be read back, diffed,
// or saved and run.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vmm/config.h"

namespace kairos::vmm {
namespace {

// In the README's order, not nlohmann's default (sorted by name).
using json = nlohmann::ordered_json;

constexpr uint64_t kNsPerUs = 1000;

json auto_or(const std::optional<uint64_t> &ns)
{
	return ns ? json(*ns / kNsPerUs) : json("auto");
}

const char *memory_check_name(Config::Machine::MemoryCheck check)
{
	switch (check) {
	case Config::Machine::MemoryCheck::Refuse:
		return "refuse";
	case Config::Machine::MemoryCheck::Off:
		return "off";
	default:
		return "warn";
	}
}

json console_json(const Config::Console &console)
{
	json out = json::object();
	switch (console.output) {
	case Config::Console::Output::Stdout:
		out["output"] = "stdout";
		break;
	case Config::Console::Output::None:
		out["output"] = "none";
		break;
	case Config::Console::Output::File:
		out["output"] = console.file.string();
		out["max_file_mib"] = console.max_file_mib;  // accepted only with a file
		break;
	}
	out["input"] = console.input_from_stdin ? "stdin" : "none";
	return out;
}

// Without the Kairos device only "enabled": false is accepted.
json outsourcing_json(const Config &config)
{
	const Config::Outsourcing &outsourcing = config.outsourcing;
	if (!config.clock.kairos)
		return {{"enabled", false}};
	const auto &window = outsourcing.window;
	return {{"enabled", outsourcing.enabled},
		{"max_timers", outsourcing.max_timers},
		{"guest_wakeups_hz", outsourcing.guest_wakeups_hz},
		{"priority", kairos::outsourcing::to_string(outsourcing.priority)},
		{"window",
		 {{"policy", kairos::outsourcing::to_string(window.policy)},
		  {"runtime_us", window.runtime_ns / kNsPerUs},
		  {"period_us", window.period_ns / kNsPerUs},
		  {"lead_us", auto_or(window.lead_ns)},
		  {"timeout_us", window.timeout_ns / kNsPerUs},
		  {"fifo_priority", window.fifo_priority}}},
		{"advance_us", auto_or(outsourcing.advance_ns)}};
}

json drives_json(const std::vector<Config::Drive> &drives)
{
	json out = json::array();
	for (const auto &drive : drives)
		out.push_back({{"id", drive.id},
			       {"path", drive.path.string()},
			       {"read_only", drive.read_only},
			       {"cache", drive.cache == Config::Drive::Cache::None ? "none" : "writeback"}});
	return out;
}

json network_json(const std::vector<Config::Network> &network)
{
	json out = json::array();
	for (const auto &net : network) {
		json entry = {{"id", net.id}, {"tap", net.tap}};
		if (net.mac)
			entry["mac"] = fmt::format("{:02x}", fmt::join(*net.mac, ":"));
		out.push_back(entry);
	}
	return out;
}

}  // namespace

std::string config_to_json(const Config &config)
{
	json boot = {{"kernel", config.boot.kernel.string()}};
	if (!config.boot.initrd.empty())
		boot["initrd"] = config.boot.initrd.string();
	boot["cmdline"] = config.boot.cmdline;
	json root = {{"machine",
		      {{"vcpus", config.machine.vcpus},
		       {"memory_mib", config.machine.memory_mib},
		       {"memory_check", memory_check_name(config.machine.memory_check)}}},
		     {"boot", boot},
		     {"console", console_json(config.console)},
		     {"clock",
		      {{"kvmclock", config.clock.kvmclock},
		       {"kairos", config.clock.kairos},
		       {"refresh_ms", config.clock.refresh_ms}}},
		     {"events", {{"virtual_timer_hz", config.events.virtual_timer_hz}}},
		     {"outsourcing", outsourcing_json(config)},
		     {"drives", drives_json(config.drives)},
		     {"network", network_json(config.network)},
		     {"security", {{"seccomp", config.security.seccomp}}}};
	if (config.vsock)
		root["vsock"] = {{"cid", config.vsock->cid}};
	return root.dump(2) + "\n";
}

}  // namespace kairos::vmm
