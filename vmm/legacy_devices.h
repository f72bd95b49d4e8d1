// The PC's legacy devices on the port bus, wired to this machine's stop
// reasons (after Firecracker's device_manager/legacy.rs): the COM1 UART,
// the i8042 (its reset line only), the CMOS RTC, the ACPI PM registers of
// the FADT and the POST code port. Ports and lines come from vmm/layout.h.
#pragma once

#include <functional>
#include <memory>

#include "base/result.h"
#include "devices/bus.h"
#include "devices/irq_line.h"
#include "devices/serial.h"

namespace kairos::vmm {

struct LegacyEvents {
	// The guest powered off (ACPI S5).
	std::function<void()> power_off;
	// The guest reset the machine; `how` names the path ("the i8042").
	std::function<void(const char *how)> reset;
};

class LegacyDevices {
public:
	// The interrupt line of ISA IRQ `gsi` (KVM's in-kernel IOAPIC/PIC in
	// a VM, a recorder in tests).
	using IrqLineFor = std::function<std::shared_ptr<devices::IrqLine>(uint32_t gsi)>;

	// Claims the devices' ports on `pio_bus`; fails if one is taken.
	static Result<LegacyDevices> attach(devices::Bus &pio_bus, const IrqLineFor &irq_line_for,
					    devices::Serial::OutputCallback console_output, LegacyEvents events);

	const std::shared_ptr<devices::Serial> &serial() const { return serial_; }

private:
	explicit LegacyDevices(std::shared_ptr<devices::Serial> serial) : serial_(std::move(serial)) {}
	std::shared_ptr<devices::Serial> serial_;
};

}  // namespace kairos::vmm
