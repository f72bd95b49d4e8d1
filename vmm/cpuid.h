// The CPUID each vCPU sees: KVM's supported set, with per-vCPU APIC ids, the
// hypervisor bit, the KVM paravirt leaves (switchable, since kvm-clock is the
// anchor we compare against) and the Kairos discovery leaves.
#pragma once

#include <linux/kvm.h>

#include "abi/kairos_abi.h"

#include <cstdint>
#include <vector>

namespace kairos::vmm {

inline constexpr uint32_t kKvmCpuidBase = 0x40000000;
inline constexpr uint32_t kKvmCpuidFeatures = 0x40000001;
// The Kairos leaves are the ABI's (kairos_abi.h): named here only so the
// code reads in the same words as the KVM ones above.
inline constexpr uint32_t kKairosCpuidBase = KAIROS_CPUID_SIGNATURE;
inline constexpr uint32_t kKairosCpuidInfo = KAIROS_CPUID_INFO;

struct CpuidOptions {
	uint32_t vcpu_count = 1;
	// false: clear KVM_FEATURE_CLOCKSOURCE{,2,_STABLE_BIT} so the guest
	// cannot use kvm-clock; the rest of the KVM leaf stays.
	bool kvmclock = true;
	// Advertise the LAPIC TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER):
	// with the TSC rate known, the guest's timer then needs no calibration.
	bool tsc_deadline_timer = false;
	// Kairos leaves: signature, then ABI version / port base / upcall IRQ.
	bool kairos = true;
	uint32_t kairos_abi_version = 0;
	uint32_t kairos_port_base = 0;
	uint32_t kairos_upcall_irq = 0;
};

// This machine's options: the Kairos leaves (when kairos) name the ABI
// version, port base and upcall IRQ of vmm/layout.h. tsc_deadline_timer is
// left for the caller to ask KVM.
CpuidOptions kairos_cpuid_options(uint32_t vcpu_count, bool kvmclock, bool kairos);

std::vector<kvm_cpuid_entry2> build_cpuid(const std::vector<kvm_cpuid_entry2> &supported, uint32_t vcpu_id,
					  const CpuidOptions &options);

// The entry for (function, index), or nullptr.
const kvm_cpuid_entry2 *find_cpuid(const std::vector<kvm_cpuid_entry2> &entries, uint32_t function, uint32_t index = 0);

}  // namespace kairos::vmm
