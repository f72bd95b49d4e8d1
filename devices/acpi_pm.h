// AcpiPm: the registers a hardware-reduced ACPI machine powers off and resets
// through (ACPI 6.4 4.8.3.7 "Sleep Control and Status Registers", 4.8.3.6
// "Reset Register"). The FADT (vmm/acpi.h) points the guest at them; Linux
// writes SLP_TYP|SLP_EN for "poweroff" and the reset value for "reboot".
//
// The three 8-bit registers sit at consecutive ports, so the device is one
// bus range:
//	auto pm = std::make_shared<devices::AcpiPm>(power_off, reset);
//	bus.add(layout::kPortAcpiSleepControl, devices::AcpiPm::kPortCount, pm);
// Offset 0 is the sleep control register, 1 the sleep status register and
// 2 the reset register (ports 0x3c0, 0x3c1 and 0x3c2).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "devices/bus.h"

namespace kairos::devices {

class AcpiPm : public BusDevice {
public:
	using Callback = std::function<void()>;

	// Register offsets from the base the device is registered at.
	static constexpr uint64_t kSleepControlOffset = 0;
	static constexpr uint64_t kSleepStatusOffset = 1;
	static constexpr uint64_t kResetOffset = 2;
	static constexpr uint64_t kPortCount = 3;

	// Sleep control register fields (ACPI 6.4 4.8.3.7).
	static constexpr uint8_t kSleepTypeShift = 2;
	static constexpr uint8_t kSleepTypeMask = 0x7 << kSleepTypeShift;  // SLP_TYPx
	static constexpr uint8_t kSleepEnable = 1 << 5;                    // SLP_EN
	// Sleep status register (ACPI 6.4 4.8.3.7): WAK_STS, never set here,
	// since a machine that was powered off does not wake up.
	static constexpr uint8_t kWakeStatus = 1 << 7;

	// The SLP_TYP that means S5 (soft off). Any value works as long as the
	// DSDT's \_S5 package says the same; vmm/acpi.cpp encodes this one.
	static constexpr uint8_t kSleepTypeSoftOff = 5;
	// What the guest writes to the reset register; the FADT's RESET_VALUE.
	static constexpr uint8_t kResetValue = 0x06;

	// Each callback runs at most once, on the vCPU thread that made the
	// write, with no lock held. Either may be empty.
	AcpiPm(Callback on_power_off, Callback on_reset);

	std::string name() const override { return "acpi-pm"; }
	// All registers read as zero: the sleep status register's WAK_STS stays
	// clear, so Linux's acpi_hw_extended_sleep() keeps polling it until the
	// VMM stops the vCPU.
	void read(uint64_t offset, std::span<uint8_t> data) override;
	// Each byte goes to the register at its own offset, so a wide access
	// acts as consecutive byte writes.
	void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
	void write_register(uint64_t offset, uint8_t value);

	Callback on_power_off_;
	Callback on_reset_;
	// vCPU threads race here; exchange() lets exactly one of them fire.
	std::atomic<bool> powered_off_{false};
	std::atomic<bool> reset_{false};
};

}  // namespace kairos::devices
