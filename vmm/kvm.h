// Thin owners of the KVM file descriptors: the system (/dev/kvm), a VM and
// its vCPUs. Each ioctl failure becomes an Error naming the ioctl and its
// arguments. Nothing here knows about Linux booting or devices.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "base/logger.h"
#include "base/mapping.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "devices/irq_line.h"

namespace kairos::vmm {

inline constexpr const char *kKvmDevicePath = "/dev/kvm";

// Why /dev/kvm cannot run Linux guests here, or an empty string when it can.
// Checked before any KVM call so the user gets one clear line.
std::string kvm_unusable_reason(const std::string &device_path);

class VcpuFd {
public:
	VcpuFd(UniqueFd fd, Mapping run) : fd_(std::move(fd)), run_(std::move(run)) {}

	int fd() const { return fd_.get(); }
	kvm_run *run() const { return reinterpret_cast<kvm_run *>(run_.data()); }

	Status get_regs(kvm_regs *regs) const;
	Status set_regs(const kvm_regs &regs) const;
	Status get_sregs(kvm_sregs *sregs) const;
	// KVM_TRANSLATE: the guest-physical address of a linear address under
	// the vCPU's current paging; an error when it is not mapped.
	Result<uint64_t> translate(uint64_t linear_address) const;
	Status set_sregs(const kvm_sregs &sregs) const;
	Status set_fpu(const kvm_fpu &fpu) const;
	Status set_cpuid(const std::vector<kvm_cpuid_entry2> &entries) const;
	Status set_msrs(const std::vector<kvm_msr_entry> &entries) const;
	Status get_lapic(kvm_lapic_state *lapic) const;
	Status set_lapic(const kvm_lapic_state &lapic) const;
	// guest TSC = host TSC + offset (no TSC scaling); KVM_VCPU_TSC_OFFSET.
	Result<int64_t> tsc_offset() const;
	Result<uint32_t> tsc_khz() const;
	// KVM_RUN; returns errno (0 on success) so the caller can tell EINTR.
	int run_once() const;

private:
	UniqueFd fd_;
	Mapping run_;
};

class VmFd {
public:
	explicit VmFd(UniqueFd fd, int run_size) : fd_(std::move(fd)), run_size_(run_size) {}

	int fd() const { return fd_.get(); }

	Status set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void *host) const;
	Status set_tss_addr(uint64_t address) const;
	Status set_identity_map_addr(uint64_t address) const;
	Status create_irqchip() const;
	Status create_pit2() const;
	Status set_irq_line(uint32_t gsi, bool level) const;
	// A guest write to port => signal eventfd, without a userspace exit.
	Status register_ioeventfd(int eventfd, uint16_t port, uint32_t length) const;
	// A guest write of `datamatch` (`length` bytes: 1, 2, 4 or 8) to the
	// guest-physical address gpa => signal eventfd, without a userspace
	// exit (KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DATAMATCH; api.rst 4.59).
	// Other values written there still exit to the MMIO bus.
	Status register_ioeventfd_mmio(int eventfd, uint64_t gpa, uint32_t length, uint64_t datamatch) const;
	Result<VcpuFd> create_vcpu(uint32_t id) const;
	int check_extension(long capability) const;
	// The guest TSC rate in kHz, as KVM runs it.
	Result<uint32_t> tsc_khz() const;

private:
	UniqueFd fd_;
	int run_size_;
};

class Kvm {
public:
	static Result<Kvm> open(const std::string &device_path = kKvmDevicePath);

	Result<VmFd> create_vm() const;
	Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
	int check_extension(long capability) const;

private:
	Kvm(UniqueFd fd, int run_size) : fd_(std::move(fd)), run_size_(run_size) {}

	UniqueFd fd_;
	int run_size_;
};

// An ISA interrupt line on KVM's in-kernel IOAPIC/PIC pair
// (KVM_IRQ_LINE), for devices that raise and lower a level.
class KvmIrqLine : public devices::IrqLine {
public:
	KvmIrqLine(const VmFd &vm, uint32_t gsi, const Logger &log) : vm_(vm), gsi_(gsi), log_(log) {}
	// A device cannot act on a failure, and the guest may still run (it
	// polls, or the next edge gets through), so this is no reason to stop.
	// But a lost interrupt shows up as a hung driver: the first failure on
	// the line is logged as an error (a device may raise it on every
	// access, from any vCPU thread).
	void set_level(bool high) override;

private:
	const VmFd &vm_;
	uint32_t gsi_;
	const Logger &log_;
	std::atomic<bool> reported_{false};
};

}  // namespace kairos::vmm
