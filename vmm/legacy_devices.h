// The PC's legacy devices on the port bus, wired to this machine's stop
// reasons (after Firecracker's device_manager/legacy.rs): the COM1 UART,
// the i8042 (its reset line only), the CMOS RTC with its interrupt timer,
// the ACPI PM registers of the FADT and the POST code port. Ports and lines
// come from vmm/layout.h.
#pragma once

#include <functional>
#include <memory>

#include "base/result.h"
#include "devices/bus.h"
#include "devices/irq_line.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "vmm/event_loop.h"

namespace kairos::vmm {

struct LegacyEvents {
	// The guest powered off (ACPI S5).
	std::function<void()> power_off;
	// The guest reset the machine; `how` names the path ("the i8042").
	std::function<void(const char *how)> reset;
};

class RtcTimer;

class LegacyDevices {
public:
	// The interrupt line of ISA IRQ `gsi` (KVM's in-kernel IOAPIC/PIC in
	// a VM, a recorder in tests).
	using IrqLineFor = std::function<std::shared_ptr<devices::IrqLine>(uint32_t gsi)>;

	// Claims the devices' ports on `pio_bus`; fails if one is taken.
	static Result<LegacyDevices> attach(devices::Bus &pio_bus, const IrqLineFor &irq_line_for,
					    devices::Serial::OutputCallback console_output, LegacyEvents events);

	// Lets `loop` serve the RTC's timer: the update, alarm and periodic
	// interrupts that fall due while no vCPU touches the RTC are raised
	// from the loop's thread. Until then they wait for the guest's next
	// access to the RTC.
	Status watch(EventLoop &loop);

	const std::shared_ptr<devices::Serial> &serial() const { return serial_; }
	const std::shared_ptr<devices::Rtc> &rtc() const { return rtc_; }

private:
	LegacyDevices(std::shared_ptr<devices::Serial> serial, std::shared_ptr<devices::Rtc> rtc,
		      std::shared_ptr<RtcTimer> rtc_timer);
	std::shared_ptr<devices::Serial> serial_;
	std::shared_ptr<devices::Rtc> rtc_;
	std::shared_ptr<RtcTimer> rtc_timer_;
};

}  // namespace kairos::vmm
