#include <catch2/catch.hpp>

#include <cstring>

#include "vmm/cpuid.h"
#include "vmm/layout.h"

using namespace kairos::vmm;

namespace {

std::vector<kvm_cpuid_entry2> fake_supported()
{
	std::vector<kvm_cpuid_entry2> entries(4);
	entries[0].function = 0;
	entries[0].eax = 0xd;
	entries[1].function = 1;
	entries[1].ebx = 0xff00ffff;  // garbage in the APIC id fields must be replaced
	entries[2].function = kKvmCpuidBase;
	entries[2].eax = kKvmCpuidFeatures;
	entries[3].function = kKvmCpuidFeatures;
	entries[3].eax = (1u << 0) | (1u << 3) | (1u << 24) | (1u << 6);
	return entries;
}

std::string signature(const kvm_cpuid_entry2 &entry)
{
	char text[13] = {};
	std::memcpy(text, &entry.ebx, 4);
	std::memcpy(text + 4, &entry.ecx, 4);
	std::memcpy(text + 8, &entry.edx, 4);
	return text;
}

}  // namespace

TEST_CASE("each vCPU gets its own APIC id and the hypervisor bit", "[cpuid]")
{
	CpuidOptions options;
	options.vcpu_count = 4;
	auto cpuid = build_cpuid(fake_supported(), 3, options);
	const auto *leaf1 = find_cpuid(cpuid, 1);
	REQUIRE(leaf1);
	CHECK((leaf1->ebx >> 24) == 3);
	CHECK(((leaf1->ebx >> 16) & 0xff) == 4);
	CHECK((leaf1->ebx & 0xffff) == 0xffff);
	CHECK((leaf1->ecx & (1u << 31)) != 0);
}

TEST_CASE("kvmclock can be switched off without removing the KVM leaf", "[cpuid]")
{
	CpuidOptions on;
	CpuidOptions off;
	off.kvmclock = false;
	auto with = build_cpuid(fake_supported(), 0, on);
	auto without = build_cpuid(fake_supported(), 0, off);
	CHECK((find_cpuid(with, kKvmCpuidFeatures)->eax & 0x01000009u) == 0x01000009u);
	CHECK((find_cpuid(without, kKvmCpuidFeatures)->eax & 0x01000009u) == 0);
	CHECK((find_cpuid(without, kKvmCpuidFeatures)->eax & (1u << 6)) != 0);  // other features kept
	CHECK(find_cpuid(without, kKvmCpuidBase) != nullptr);
}

TEST_CASE("the Kairos leaves carry the signature and discovery values", "[cpuid]")
{
	CpuidOptions options;
	options.kairos_abi_version = 7;
	options.kairos_port_base = 0x5c0;
	options.kairos_upcall_irq = 10;
	auto cpuid = build_cpuid(fake_supported(), 0, options);
	const auto *base = find_cpuid(cpuid, kKairosCpuidBase);
	REQUIRE(base);
	CHECK(signature(*base) == "KairosKairos");
	CHECK(base->eax == kKairosCpuidInfo);
	const auto *info = find_cpuid(cpuid, kKairosCpuidInfo);
	REQUIRE(info);
	CHECK(info->eax == 7);
	CHECK(info->ebx == 0x5c0);
	CHECK(info->ecx == 10);

	options.kairos = false;
	auto plain = build_cpuid(fake_supported(), 0, options);
	CHECK(find_cpuid(plain, kKairosCpuidBase) == nullptr);
}

TEST_CASE("this machine's options name its ABI version, Kairos ports and upcall IRQ", "[cpuid]")
{
	CpuidOptions options = kairos_cpuid_options(4, false, true);
	CHECK(options.vcpu_count == 4);
	CHECK_FALSE(options.kvmclock);
	CHECK(options.kairos);
	CHECK(options.kairos_abi_version == KAIROS_ABI_VERSION);
	CHECK(options.kairos_port_base == kairos::layout::kPortKairosBase);
	CHECK(options.kairos_upcall_irq == kairos::layout::kIrqKairosUpcall);
	CHECK_FALSE(options.tsc_deadline_timer);  // the caller asks KVM
	auto cpuid = build_cpuid(fake_supported(), 0, options);
	const auto *info = find_cpuid(cpuid, kKairosCpuidInfo);
	REQUIRE(info);
	CHECK(info->ebx == kairos::layout::kPortKairosBase);
}
