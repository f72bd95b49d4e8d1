#include "vmm/host_memory.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/error.h"

namespace kairos::vmm {
namespace {

// The value of a "Name:   12345 kB" line, in kB.
std::optional<uint64_t> meminfo_kb(std::string_view text, std::string_view name)
{
	size_t at = 0;
	while ((at = text.find(name, at)) != std::string_view::npos) {
		bool line_start = at == 0 || text[at - 1] == '\n';
		size_t after = at + name.size();
		at = after;
		if (!line_start || after >= text.size() || text[after] != ':')
			continue;
		size_t digits = text.find_first_not_of(" \t", after + 1);
		if (digits == std::string_view::npos)
			return std::nullopt;
		uint64_t kb = 0;
		auto [end, error] = std::from_chars(text.data() + digits, text.data() + text.size(), kb);
		if (error != std::errc())
			return std::nullopt;
		return kb;
	}
	return std::nullopt;
}

}  // namespace

Result<HostMemory> parse_meminfo(std::string_view text)
{
	auto available_kb = meminfo_kb(text, "MemAvailable");
	if (!available_kb)
		return make_error("/proc/meminfo: no MemAvailable line (Linux 3.14 or later has one)");
	// No swap configured at all still prints SwapFree: 0 kB; be lenient.
	uint64_t swap_kb = meminfo_kb(text, "SwapFree").value_or(0);
	return HostMemory{*available_kb / 1024, swap_kb / 1024};
}

Result<HostMemory> read_host_memory(const std::filesystem::path &meminfo)
{
	std::ifstream in(meminfo);
	if (!in)
		return make_error("cannot read {}", meminfo.string());
	std::stringstream text;
	text << in.rdbuf();
	return parse_meminfo(text.str());
}

std::optional<std::string> memory_shortfall(uint64_t guest_mib, const HostMemory &host)
{
	uint64_t can_give = host.available_mib + host.swap_free_mib;
	if (guest_mib <= can_give)
		return std::nullopt;
	return fmt::format("machine.memory_mib: {} MiB is more than this host can give now ({} MiB: "
			   "MemAvailable {} + SwapFree {})",
			   guest_mib, can_give, host.available_mib, host.swap_free_mib);
}

Status check_host_memory(const Config &config, const Logger &log, const std::filesystem::path &meminfo)
{
	using Check = Config::Machine::MemoryCheck;
	if (config.machine.memory_check == Check::Off)
		return {};
	auto host = read_host_memory(meminfo);
	if (!host) {
		log.warn("guest memory not checked against the host's: {}", host.error().message);
		return {};
	}
	auto shortfall = memory_shortfall(config.machine.memory_mib, *host);
	if (!shortfall)
		return {};
	if (config.machine.memory_check == Check::Refuse)
		return make_error("{}; machine.memory_check is \"refuse\"", *shortfall);
	log.warn("{}; if the guest touches it all, the host's OOM killer ends kairos without a last line "
		 "(machine.memory_check \"refuse\" refuses such a run)",
		 *shortfall);
	return {};
}

}  // namespace kairos::vmm
