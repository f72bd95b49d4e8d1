#include "vmm/vcpu_exit.h"

#include <fmt/format.h>

#include <algorithm>
#include <span>

namespace kairos::vmm {
namespace {

// KVM_EXIT_IO (Documentation/virt/kvm/api.rst): the data of count
// accesses of size bytes each lies at data_offset from the start of
// kvm_run, inside the mapping KVM shares with this thread.
void handle_port_io(kvm_run &run, const devices::Bus &pio)
{
	auto *data = reinterpret_cast<uint8_t *>(&run) + run.io.data_offset;
	for (uint32_t i = 0; i < run.io.count; ++i) {
		std::span<uint8_t> chunk(data + i * run.io.size, run.io.size);
		if (run.io.direction == KVM_EXIT_IO_OUT)
			pio.write(run.io.port, chunk);
		else
			pio.read(run.io.port, chunk);
	}
}

// KVM_EXIT_MMIO: at most the 8 bytes of mmio.data, whatever len says.
void handle_mmio(kvm_run &run, const devices::Bus &mmio)
{
	uint32_t length = std::min<uint32_t>(run.mmio.len, sizeof(run.mmio.data));
	std::span<uint8_t> data(run.mmio.data, length);
	if (run.mmio.is_write)
		mmio.write(run.mmio.phys_addr, data);
	else
		mmio.read(run.mmio.phys_addr, data);
}

VcpuStop system_event_stop(const kvm_run &run)
{
	switch (run.system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return {StopReason::PowerOff, "system event: shutdown"};
	case KVM_SYSTEM_EVENT_RESET:
		return {StopReason::Reset, "system event: reset"};
	default:
		// KVM_SYSTEM_EVENT_CRASH, and any type newer than this code.
		return {StopReason::GuestPanic, fmt::format("system event {}", run.system_event.type)};
	}
}

}  // namespace

std::optional<VcpuStop> handle_vcpu_exit(kvm_run &run, uint32_t vcpu_id, const devices::Bus &pio,
					 const devices::Bus &mmio)
{
	switch (run.exit_reason) {
	case KVM_EXIT_IO:
		handle_port_io(run, pio);
		return std::nullopt;
	case KVM_EXIT_MMIO:
		handle_mmio(run, mmio);
		return std::nullopt;
	case KVM_EXIT_INTR:
		// A kick: the run loop looks at the shutdown flag again.
		return std::nullopt;
	case KVM_EXIT_SHUTDOWN:
		return VcpuStop{StopReason::TripleFault, fmt::format("vCPU {} triple-faulted", vcpu_id)};
	case KVM_EXIT_SYSTEM_EVENT:
		return system_event_stop(run);
	case KVM_EXIT_HLT:
		return VcpuStop{StopReason::GuestError, fmt::format("vCPU {} halted", vcpu_id)};
	case KVM_EXIT_FAIL_ENTRY:
		return VcpuStop{StopReason::GuestError,
				fmt::format("vCPU {}: VM entry failed, hardware reason {:#x}", vcpu_id,
					    run.fail_entry.hardware_entry_failure_reason)};
	case KVM_EXIT_INTERNAL_ERROR:
		return VcpuStop{StopReason::GuestError, fmt::format("vCPU {}: KVM internal error, suberror {}", vcpu_id,
								    run.internal.suberror)};
	default:
		return VcpuStop{StopReason::GuestError,
				fmt::format("vCPU {}: unexpected exit reason {}", vcpu_id, run.exit_reason)};
	}
}

}  // namespace kairos::vmm
