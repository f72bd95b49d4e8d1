// What a vCPU thread does with one return from KVM_RUN (after Firecracker's
// Vcpu::handle_kvm_exit): port and MMIO accesses go to the buses, anything
// that ends the guest becomes a stop with a reason. A free function over
// kvm_run, so every branch can be tested with a synthetic exit and no VM.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "vmm/shutdown.h"

namespace kairos::vmm {

// Why the machine must stop, for Shutdown::request.
struct VcpuStop {
	StopReason reason;
	std::string detail;
};

// Handles the exit KVM described in run for vCPU vcpu_id. Port I/O,
// including string I/O (count accesses of size bytes at run.io.data_offset),
// and MMIO are dispatched to pio and mmio; reads are answered in run, where
// KVM picks them up on the next KVM_RUN. Returns the stop when the guest
// can run no further (shutdown, reset, crash, a failed entry, an
// internal error, HLT or an exit reason Kairos does not handle), nothing
// when the vCPU runs on.
std::optional<VcpuStop> handle_vcpu_exit(kvm_run &run, uint32_t vcpu_id, const devices::Bus &pio,
					 const devices::Bus &mmio);

// Whether a stop deserves the vCPU's registers on stderr: the guest could
// not run on (an internal error, a failed entry, a triple fault), where
// the registers and the code at RIP are what anyone debugging needs.
bool stop_wants_vcpu_state(StopReason reason);

// Bytes around the instruction pointer, and where RIP is among them.
struct CodeBytes {
	std::vector<uint8_t> bytes;
	size_t rip_index = 0;
};

// The vCPU's state as QEMU prints it for a KVM internal error: general
// registers, RIP and RFLAGS with the privilege level, segments, control
// registers and EFER, then "Code=" with the byte at RIP in <>. Several
// lines, each ending in a newline.
std::string describe_vcpu_state(uint32_t vcpu_id, const kvm_regs &regs, const kvm_sregs &sregs,
				const std::optional<CodeBytes> &code);

}  // namespace kairos::vmm
