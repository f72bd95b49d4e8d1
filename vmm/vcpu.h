// A vCPU and its thread. The thread only runs the guest and dispatches its
// port and MMIO exits to the buses; anything slow belongs elsewhere.
#pragma once

#include <pthread.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "base/logger.h"
#include "devices/bus.h"
#include "vmm/boot.h"
#include "vmm/confinement.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"
#include "vmm/run_gate.h"
#include "vmm/shutdown.h"
#include "vmm/vcpu_exit.h"

namespace kairos::vmm {

// The signal used to pull a vCPU thread out of KVM_RUN.
int vcpu_kick_signal();
// Installs the (empty) kick handler; call once before starting vCPUs.
Status install_vcpu_kick_handler();

class Vcpu {
public:
	// memory: read for the code bytes at RIP when the guest cannot run on,
	// which `log` reports with the registers.
	// gate: passed before every KVM_RUN (pause and resume).
	Vcpu(uint32_t id, VcpuFd fd, const devices::Bus &pio, const devices::Bus &mmio, const GuestMemory &memory,
	     Shutdown &shutdown, RunGate &gate, const Logger &log)
		: id_(id), fd_(std::move(fd)), pio_(pio), mmio_(mmio), memory_(memory), shutdown_(shutdown),
		  gate_(gate), log_(log)
	{
	}
	~Vcpu() { join(); }
	Vcpu(const Vcpu &) = delete;
	Vcpu &operator=(const Vcpu &) = delete;

	uint32_t id() const { return id_; }
	// The vCPU's KVM descriptor, for its thread's seccomp filter.
	int kvm_fd() const { return fd_.fd(); }

	// CPUID, FPU, MSRs and LAPIC LINT wiring for every vCPU.
	Status configure(const std::vector<kvm_cpuid_entry2> &cpuid);
	// Long mode at the kernel's 64-bit entry (bootstrap processor only; the
	// others wait for the guest's INIT/SIPI in the in-kernel LAPIC).
	Status set_boot_state(const BootEntry &entry);

	Result<int64_t> tsc_offset() const { return fd_.tsc_offset(); }
	Result<uint32_t> tsc_khz() const { return fd_.tsc_khz(); }

	// The thread confines itself (confinement.h) before it runs the guest;
	// confinement must outlive it.
	void start(const Confinement &confinement);
	// Makes KVM_RUN return promptly; the loop then sees the shutdown or
	// the closed gate.
	void kick();
	void join();

	// The vCPU thread's Linux thread id (for /proc schedstat), 0 until it runs.
	uint64_t thread_id() const { return thread_id_.load(); }
	// Its CPU-time clock (pthread_getcpuclockid); valid once thread_id() != 0.
	clockid_t cpu_clock() const { return cpu_clock_.load(); }
	uint64_t exits() const { return exits_.load(std::memory_order_relaxed); }
	// Read by the thread as it ends (0 before): its CPU time, its run
	// delay (time runnable but not running) and how often it was preempted.
	uint64_t final_cpu_ns() const { return final_cpu_ns_.load(); }
	uint64_t final_run_delay_ns() const { return final_run_delay_ns_.load(); }
	uint64_t final_preemptions() const { return final_preemptions_.load(); }

private:
	void run_loop(const Confinement &confinement);
	void run_guest();
	// The registers and the code at RIP on stderr, as QEMU prints them.
	void report_state() const;
	std::optional<CodeBytes> read_code(const kvm_regs &regs, const kvm_sregs &sregs) const;

	uint32_t id_;
	VcpuFd fd_;
	const devices::Bus &pio_;
	const devices::Bus &mmio_;
	const GuestMemory &memory_;
	Shutdown &shutdown_;
	RunGate &gate_;
	const Logger &log_;
	std::thread thread_;
	std::atomic<clockid_t> cpu_clock_{0};
	std::atomic<uint64_t> thread_id_{0};
	std::atomic<uint64_t> exits_{0};
	std::atomic<uint64_t> final_cpu_ns_{0};
	std::atomic<uint64_t> final_run_delay_ns_{0};
	std::atomic<uint64_t> final_preemptions_{0};
};

// The guest's TSC rate in kHz: the VM's (KVM_CAP_VM_TSC_CONTROL, Linux
// 6.0); older kernels answer per vCPU only, all alike since Kairos never
// sets one. An error if neither can be asked.
Result<uint32_t> guest_tsc_khz(const VmFd &vm, const std::vector<std::unique_ptr<Vcpu>> &vcpus);

}  // namespace kairos::vmm
