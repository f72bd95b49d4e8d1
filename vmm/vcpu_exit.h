// What a vCPU thread does with one return from KVM_RUN (after Firecracker's
// Vcpu::handle_kvm_exit): port and MMIO accesses go to the buses, anything
// that ends the guest becomes a stop with a reason. A free function over
// kvm_run, so every branch can be tested with a synthetic exit and no VM.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace kairos::vmm
