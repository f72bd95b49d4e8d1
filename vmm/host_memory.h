// Whether this host can give the guest the memory its config asks for
// (issue 12, #8). Guest RAM is anonymous memory the kernel supplies as the
// guest touches it, so a guest larger than the host boots fine and is
// ended later by the OOM killer: SIGKILL, with no last line and no stats.
// Only a check before the run can say so.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/logger.h"
#include "base/result.h"
#include "vmm/config.h"

namespace kairos::vmm {

// What the host can give now, in MiB (proc(5), /proc/meminfo): memory
// available without swapping, plus free swap.
struct HostMemory {
	uint64_t available_mib = 0;  // MemAvailable
	uint64_t swap_free_mib = 0;  // SwapFree
};

// From the text of /proc/meminfo; an error names the missing field.
Result<HostMemory> parse_meminfo(std::string_view text);
Result<HostMemory> read_host_memory(const std::filesystem::path &meminfo = "/proc/meminfo");

// One line saying why guest_mib does not fit, or nullopt when it does.
std::optional<std::string> memory_shortfall(uint64_t guest_mib, const HostMemory &host);

// Applies config.machine.memory_check: "warn" logs the shortfall as a
// warning, "refuse" returns it as an error, "off" does nothing. A host
// whose /proc/meminfo cannot be read is not checked (a warning says so).
Status check_host_memory(const Config &config, const Logger &log,
			 const std::filesystem::path &meminfo = "/proc/meminfo");

}  // namespace kairos::vmm
