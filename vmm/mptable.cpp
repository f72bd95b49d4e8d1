#include "vmm/mptable.h"

#include "vmm/layout.h"
#include "vmm/table_writer.h"

namespace kairos::vmm {
namespace {

// Entry types and flags, MP spec 1.4 chapter 4.
constexpr uint8_t kEntryProcessor = 0;
constexpr uint8_t kEntryBus = 1;
constexpr uint8_t kEntryIoapic = 2;
constexpr uint8_t kEntryIoInterrupt = 3;
constexpr uint8_t kEntryLocalInterrupt = 4;
constexpr uint8_t kCpuEnabled = 1;
constexpr uint8_t kCpuBootstrap = 2;
constexpr uint8_t kIoapicEnabled = 1;
constexpr uint8_t kInterruptInt = 0;
constexpr uint8_t kInterruptNmi = 1;
constexpr uint8_t kInterruptExtInt = 3;
constexpr uint8_t kSpecRevision = 4;  // 1.4
constexpr uint8_t kLapicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
constexpr uint8_t kAllLapics = 0xff;
constexpr uint8_t kIsaBusId = 0;

void processor_entry(TableWriter &w, uint8_t lapic_id, bool bootstrap)
{
	w.u8(kEntryProcessor);
	w.u8(lapic_id);
	w.u8(kLapicVersion);
	w.u8(kCpuEnabled | (bootstrap ? kCpuBootstrap : 0));
	w.u32(0x600);  // CPU signature: family 6; Linux takes the real one from CPUID
	w.u32(0x201);  // feature flags: FPU, APIC
	w.zeros(8);
}

void io_interrupt_entry(TableWriter &w, uint8_t type, uint8_t source_irq, uint8_t ioapic_id, uint8_t pin)
{
	w.u8(kEntryIoInterrupt);
	w.u8(type);
	w.u16(0);  // polarity and trigger conform to the bus: ISA is edge, active high
	w.u8(kIsaBusId);
	w.u8(source_irq);
	w.u8(ioapic_id);
	w.u8(pin);
}

void local_interrupt_entry(TableWriter &w, uint8_t type, uint8_t lint)
{
	w.u8(kEntryLocalInterrupt);
	w.u8(type);
	w.u16(0);
	w.u8(kIsaBusId);
	w.u8(0);
	w.u8(kAllLapics);
	w.u8(lint);
}

}  // namespace

std::vector<uint8_t> build_mp_table(uint64_t address, uint32_t vcpu_count)
{
	constexpr size_t kFloatingSize = 16;
	const auto ioapic_id = static_cast<uint8_t>(vcpu_count);

	TableWriter w;
	// Floating pointer structure (spec 4.1), pointing just past itself.
	w.text("_MP_", 4);
	w.u32(static_cast<uint32_t>(address + kFloatingSize));
	w.u8(1);  // length in 16-byte units
	w.u8(kSpecRevision);
	w.u8(0);     // checksum
	w.zeros(5);  // feature bytes: 0 = a configuration table follows

	// Configuration table header (spec 4.2); counts filled in below.
	const size_t header = w.bytes.size();
	w.text("PCMP", 4);
	w.u16(0);  // base table length
	w.u8(kSpecRevision);
	w.u8(0);  // checksum
	w.text("KAIROS", 8);
	w.text("KAIROS VMM", 12);
	w.u32(0);  // OEM table pointer
	w.u16(0);  // OEM table size
	w.u16(0);  // entry count
	w.u32(static_cast<uint32_t>(layout::kLapicAddr));
	w.u16(0);  // extended table length
	w.u8(0);   // extended table checksum
	w.u8(0);

	uint16_t entries = 0;
	for (uint32_t cpu = 0; cpu < vcpu_count; ++cpu, ++entries)
		processor_entry(w, static_cast<uint8_t>(cpu), cpu == 0);

	w.u8(kEntryBus);
	w.u8(kIsaBusId);
	w.text("ISA", 6);
	++entries;

	w.u8(kEntryIoapic);
	w.u8(ioapic_id);
	w.u8(kIoapicVersion);
	w.u8(kIoapicEnabled);
	w.u32(static_cast<uint32_t>(layout::kIoapicAddr));
	++entries;

	// ISA IRQ n arrives on IOAPIC pin n, as KVM's default GSI routing does.
	for (uint8_t irq = 0; irq < layout::kIsaIrqCount; ++irq, ++entries)
		io_interrupt_entry(w, kInterruptInt, irq, ioapic_id, irq);

	// Virtual-wire mode: the 8259 on LINT0, NMI on LINT1 (spec 3.6.2.2).
	local_interrupt_entry(w, kInterruptExtInt, 0);
	local_interrupt_entry(w, kInterruptNmi, 1);
	entries += 2;

	std::vector<uint8_t> table = std::move(w.bytes);
	auto length = static_cast<uint16_t>(table.size() - header);
	put_u16(table, header + 4, length);
	put_u16(table, header + 34, entries);
	fix_checksum(table, header, table.size(), header + 7);
	fix_checksum(table, 0, kFloatingSize, 10);
	return table;
}

}  // namespace kairos::vmm
