#include "devices/acpi_pm.h"

#include <algorithm>
#include <utility>

namespace kairos::devices {

AcpiPm::AcpiPm(Callback on_power_off, Callback on_reset)
	: on_power_off_(std::move(on_power_off)), on_reset_(std::move(on_reset))
{
}

void AcpiPm::read(uint64_t, std::span<uint8_t> data)
{
	std::fill(data.begin(), data.end(), uint8_t{0});
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data)
{
	for (size_t i = 0; i < data.size(); ++i)
		write_register(offset + i, data[i]);
}

void AcpiPm::write_register(uint64_t offset, uint8_t value)
{
	switch (offset) {
	case kSleepControlOffset: {
		// Only S5 ends the machine. Other sleep states would need the
		// guest to resume with its memory intact and WAK_STS set; the
		// DSDT does not offer them, so a write of one is a guest bug
		// and is ignored, as is SLP_TYP without SLP_EN.
		uint8_t sleep_type = (value & kSleepTypeMask) >> kSleepTypeShift;
		if (!(value & kSleepEnable) || sleep_type != kSleepTypeSoftOff)
			return;
		if (!powered_off_.exchange(true) && on_power_off_)
			on_power_off_();
		return;
	}
	case kResetOffset:
		// Linux falls back to other reset methods (the i8042, a triple
		// fault) if the machine is still running after this write, so
		// the first one is the one that counts.
		if (value == kResetValue && !reset_.exchange(true) && on_reset_)
			on_reset_();
		return;
	default:
		// The sleep status register: the guest clears WAK_STS by
		// writing it as 1 before sleeping; there is nothing to clear.
		return;
	}
}

}  // namespace kairos::devices
