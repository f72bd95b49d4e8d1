#include "vmm/legacy_devices.h"

#include <algorithm>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "vmm/layout.h"

namespace kairos::vmm {
namespace {

// Port 0x80: Linux writes it to delay I/O. Claim it so it is not counted
// as an unclaimed access.
class PostCodePort : public devices::BusDevice {
public:
	std::string name() const override { return "POST code port"; }
	void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
	void write(uint64_t, std::span<const uint8_t>) override {}
};

}  // namespace

Result<LegacyDevices> LegacyDevices::attach(devices::Bus &pio_bus, const IrqLineFor &irq_line_for,
					    devices::Serial::OutputCallback console_output, LegacyEvents events)
{
	auto serial = std::make_shared<devices::Serial>(irq_line_for(layout::kIrqCom1), std::move(console_output));
	KAIROS_TRY(pio_bus.add(layout::kPortCom1, layout::kComPortSize, serial));

	// reboot=k resets through the keyboard controller, reboot=a (or the
	// BIOS reset vector) through the ACPI reset register.
	auto reset = events.reset;
	auto i8042 = std::make_shared<devices::I8042>([reset] { reset("the i8042"); });
	KAIROS_TRY(pio_bus.add(layout::kPortI8042Data, 1, i8042->data_port()));
	KAIROS_TRY(pio_bus.add(layout::kPortI8042Command, 1, i8042->command_port()));

	KAIROS_TRY(pio_bus.add(layout::kPortRtc, layout::kRtcPortSize, std::make_shared<devices::Rtc>()));
	auto acpi_pm =
		std::make_shared<devices::AcpiPm>(events.power_off, [reset] { reset("the ACPI reset register"); });
	KAIROS_TRY(pio_bus.add(layout::kPortAcpiSleepControl, devices::AcpiPm::kPortCount, acpi_pm));
	KAIROS_TRY(pio_bus.add(layout::kPortPostCode, 1, std::make_shared<PostCodePort>()));
	return LegacyDevices(std::move(serial));
}

}  // namespace kairos::vmm
