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

std::string describe_segment(const char *name, const kvm_segment &segment)
{
	return fmt::format("{:<3}={:04x} {:016x} {:08x} type {:x} dpl {} {}{}{}", name, segment.selector, segment.base,
			   segment.limit, segment.type, segment.dpl, segment.present ? "P" : "-", segment.l ? " L" : "",
			   segment.db ? " DB" : "");
}

}  // namespace

bool stop_wants_vcpu_state(StopReason reason)
{
	return reason == StopReason::GuestError || reason == StopReason::TripleFault;
}

std::string describe_vcpu_state(uint32_t vcpu_id, const kvm_regs &regs, const kvm_sregs &sregs,
				const std::optional<CodeBytes> &code)
{
	std::string text = fmt::format("vCPU {} state:\n", vcpu_id);
	text += fmt::format("RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}\n", regs.rax, regs.rbx, regs.rcx,
			    regs.rdx);
	text += fmt::format("RSI={:016x} RDI={:016x} RBP={:016x} RSP={:016x}\n", regs.rsi, regs.rdi, regs.rbp,
			    regs.rsp);
	text += fmt::format("R8 ={:016x} R9 ={:016x} R10={:016x} R11={:016x}\n", regs.r8, regs.r9, regs.r10, regs.r11);
	text += fmt::format("R12={:016x} R13={:016x} R14={:016x} R15={:016x}\n", regs.r12, regs.r13, regs.r14,
			    regs.r15);
	// CPL: the DPL of SS (Intel SDM 5.5).
	text += fmt::format("RIP={:016x} RFL={:08x} CPL={}\n", regs.rip, regs.rflags, sregs.ss.dpl);
	for (const auto &[name, segment] : {std::pair{"CS", &sregs.cs}, std::pair{"SS", &sregs.ss},
					    std::pair{"DS", &sregs.ds}, std::pair{"TR", &sregs.tr}})
		text += describe_segment(name, *segment) + "\n";
	text += fmt::format("GDT={:016x} {:08x} IDT={:016x} {:08x}\n", sregs.gdt.base, sregs.gdt.limit, sregs.idt.base,
			    sregs.idt.limit);
	text += fmt::format("CR0={:08x} CR2={:016x} CR3={:016x} CR4={:08x} EFER={:016x}\n", sregs.cr0, sregs.cr2,
			    sregs.cr3, sregs.cr4, sregs.efer);
	// AMD's SVM leaves the VMCB undefined after a shutdown intercept, so
	// KVM reinitialises the vCPU: after a triple fault there, this is the
	// reset state, not the faulting one. Say so rather than mislead.
	if (regs.rip == 0xfff0 && sregs.cs.selector == 0xf000)
		text += "(the reset state: KVM reinitialises a vCPU after a triple fault on AMD; the faulting state is "
			"lost)\n";
	if (!code || code->bytes.empty())
		return text + "Code=(not readable)\n";
	text += "Code=";
	for (size_t i = 0; i < code->bytes.size(); ++i)
		text += i == code->rip_index ? fmt::format("<{:02x}> ", code->bytes[i])
					     : fmt::format("{:02x} ", code->bytes[i]);
	text.back() = '\n';
	return text;
}

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
