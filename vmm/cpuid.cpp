#include "vmm/cpuid.h"

#include "vmm/layout.h"

#include <algorithm>
#include <cstring>

namespace kairos::vmm {

CpuidOptions kairos_cpuid_options(uint32_t vcpu_count, bool kvmclock, bool kairos)
{
	CpuidOptions options;
	options.vcpu_count = vcpu_count;
	options.kvmclock = kvmclock;
	options.kairos = kairos;
	options.kairos_abi_version = KAIROS_ABI_VERSION;
	options.kairos_port_base = layout::kPortKairosBase;
	options.kairos_upcall_irq = layout::kIrqKairosUpcall;
	return options;
}
namespace {

constexpr uint32_t kLeafFeatures = 1;
constexpr uint32_t kLeafExtendedTopology = 0xb;
constexpr uint32_t kLeafExtendedTopologyV2 = 0x1f;
constexpr uint32_t kEcxHypervisor = 1u << 31;    // SDM vol. 2A, CPUID.01H:ECX[31]
constexpr uint32_t kEbxInitialApicIdShift = 24;  // CPUID.01H:EBX[31:24]
constexpr uint32_t kEbxLogicalCountShift = 16;   // CPUID.01H:EBX[23:16]
constexpr uint32_t kEdxHtt = 1u << 28;
constexpr uint32_t kEcxTscDeadline = 1u << 24;  // CPUID.01H:ECX[24]
// Linux arch/x86/include/uapi/asm/kvm_para.h
constexpr uint32_t kKvmFeatureClocksource = 1u << 0;
constexpr uint32_t kKvmFeatureClocksource2 = 1u << 3;
constexpr uint32_t kKvmFeatureClocksourceStable = 1u << 24;

uint32_t signature_word(const char *text, int word)
{
	uint32_t value;
	std::memcpy(&value, text + 4 * word, 4);
	return value;
}

}  // namespace

const kvm_cpuid_entry2 *find_cpuid(const std::vector<kvm_cpuid_entry2> &entries, uint32_t function, uint32_t index)
{
	for (const auto &entry : entries) {
		bool indexed = entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		if (entry.function == function && (!indexed || entry.index == index))
			return &entry;
	}
	return nullptr;
}

std::vector<kvm_cpuid_entry2> build_cpuid(const std::vector<kvm_cpuid_entry2> &supported, uint32_t vcpu_id,
					  const CpuidOptions &options)
{
	std::vector<kvm_cpuid_entry2> entries;
	for (auto entry : supported) {
		switch (entry.function) {
		case kLeafFeatures:
			entry.ecx |= kEcxHypervisor;
			entry.ebx = (entry.ebx & 0x0000ffff) | (vcpu_id << kEbxInitialApicIdShift) |
				    (std::min<uint32_t>(options.vcpu_count, 255) << kEbxLogicalCountShift);
			if (options.vcpu_count > 1)
				entry.edx |= kEdxHtt;
			if (options.tsc_deadline_timer)
				entry.ecx |= kEcxTscDeadline;
			break;
		case kLeafExtendedTopology:
		case kLeafExtendedTopologyV2:
			entry.edx = vcpu_id;  // x2APIC id, for every sub-leaf
			break;
		case kKvmCpuidFeatures:
			if (!options.kvmclock)
				entry.eax &= ~(kKvmFeatureClocksource | kKvmFeatureClocksource2 |
					       kKvmFeatureClocksourceStable);
			break;
		default:
			break;
		}
		// KVM may report leaves in our range; ours replace them.
		if (entry.function >= kKairosCpuidBase && entry.function <= kKairosCpuidInfo)
			continue;
		entries.push_back(entry);
	}
	if (options.kairos) {
		static constexpr char kSignature[] = KAIROS_SIGNATURE;
		kvm_cpuid_entry2 base{};
		base.function = kKairosCpuidBase;
		base.eax = kKairosCpuidInfo;  // highest Kairos leaf
		base.ebx = signature_word(kSignature, 0);
		base.ecx = signature_word(kSignature, 1);
		base.edx = signature_word(kSignature, 2);
		entries.push_back(base);

		kvm_cpuid_entry2 info{};
		info.function = kKairosCpuidInfo;
		info.eax = options.kairos_abi_version;
		info.ebx = options.kairos_port_base;
		info.ecx = options.kairos_upcall_irq;
		entries.push_back(info);
	}
	return entries;
}

}  // namespace kairos::vmm
