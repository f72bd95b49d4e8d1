// The Intel MultiProcessor Specification 1.4 table: tells the guest how many
// CPUs there are, where the IOAPIC is and how ISA interrupts reach it.
// Without it (and without ACPI) Linux runs one CPU and the 8259 PIC only.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/layout.h"

namespace kairos::vmm {

inline constexpr uint32_t kMaxMpCpus = layout::kMaxApicCpus;

// Floating pointer + configuration table, laid out for guest address
// `address`, with all checksums filled in. The IOAPIC's id is vcpu_count.
std::vector<uint8_t> build_mp_table(uint64_t address, uint32_t vcpu_count);

}  // namespace kairos::vmm
