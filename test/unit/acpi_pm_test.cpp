#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "devices/acpi_pm.h"
#include "devices/bus.h"

using kairos::devices::AcpiPm;
using kairos::devices::Bus;

namespace {

struct Counts {
	std::atomic<int> power_off{0};
	std::atomic<int> reset{0};
};

std::shared_ptr<AcpiPm> make_pm(Counts &counts)
{
	return std::make_shared<AcpiPm>([&counts] { ++counts.power_off; }, [&counts] { ++counts.reset; });
}

void write(AcpiPm &pm, uint64_t offset, uint8_t value)
{
	pm.write(offset, {&value, 1});
}

constexpr uint8_t sleep_control(uint8_t type, bool enable)
{
	return static_cast<uint8_t>((type << AcpiPm::kSleepTypeShift) | (enable ? AcpiPm::kSleepEnable : 0));
}

}  // namespace

TEST_CASE("AcpiPm: SLP_TYP=5 with SLP_EN powers off, exactly once", "[acpi_pm]")
{
	Counts counts;
	auto pm = make_pm(counts);
	// What Linux's acpi_hw_extended_sleep() writes: 5 << 2 | 1 << 5.
	CHECK(sleep_control(5, true) == 0x34);
	write(*pm, AcpiPm::kSleepControlOffset, sleep_control(5, true));
	CHECK(counts.power_off == 1);
	write(*pm, AcpiPm::kSleepControlOffset, sleep_control(5, true));
	CHECK(counts.power_off == 1);
	CHECK(counts.reset == 0);
}

TEST_CASE("AcpiPm: SLP_TYP=5 without SLP_EN, or another sleep type, does nothing", "[acpi_pm]")
{
	Counts counts;
	auto pm = make_pm(counts);
	write(*pm, AcpiPm::kSleepControlOffset, sleep_control(5, false));
	for (uint8_t type = 0; type < 8; ++type)
		if (type != 5)
			write(*pm, AcpiPm::kSleepControlOffset, sleep_control(type, true));
	// Clearing WAK_STS in the status register is not a sleep request either.
	write(*pm, AcpiPm::kSleepStatusOffset, AcpiPm::kWakeStatus);
	write(*pm, AcpiPm::kSleepStatusOffset, sleep_control(5, true));
	CHECK(counts.power_off == 0);
	CHECK(counts.reset == 0);

	// The device still powers off afterwards.
	write(*pm, AcpiPm::kSleepControlOffset, sleep_control(5, true));
	CHECK(counts.power_off == 1);
}

TEST_CASE("AcpiPm: the reset value resets, other values do not", "[acpi_pm]")
{
	Counts counts;
	auto pm = make_pm(counts);
	for (unsigned value = 0; value < 256; ++value)
		if (value != AcpiPm::kResetValue)
			write(*pm, AcpiPm::kResetOffset, static_cast<uint8_t>(value));
	CHECK(counts.reset == 0);
	write(*pm, AcpiPm::kResetOffset, AcpiPm::kResetValue);
	CHECK(counts.reset == 1);
	write(*pm, AcpiPm::kResetOffset, AcpiPm::kResetValue);
	CHECK(counts.reset == 1);
	CHECK(counts.power_off == 0);
}

TEST_CASE("AcpiPm: every register reads zero, so WAK_STS stays clear", "[acpi_pm]")
{
	Counts counts;
	auto pm = make_pm(counts);
	write(*pm, AcpiPm::kSleepControlOffset, sleep_control(5, true));
	for (uint64_t offset = 0; offset < AcpiPm::kPortCount; ++offset) {
		uint8_t value = 0xff;
		pm->read(offset, {&value, 1});
		CHECK(value == 0);
	}
	uint8_t wide[4] = {0xff, 0xff, 0xff, 0xff};
	pm->read(0, wide);
	CHECK(wide[0] == 0);
	CHECK(wide[3] == 0);
}

TEST_CASE("AcpiPm: on the bus at 0x3c0, port 0x3c2 is the reset register", "[acpi_pm]")
{
	Counts counts;
	Bus bus;
	REQUIRE(bus.add(0x3c0, AcpiPm::kPortCount, make_pm(counts)).ok());
	uint8_t reset = AcpiPm::kResetValue;
	REQUIRE(bus.write(0x3c2, {&reset, 1}));
	CHECK(counts.reset == 1);
	uint8_t off = sleep_control(5, true);
	REQUIRE(bus.write(0x3c0, {&off, 1}));
	CHECK(counts.power_off == 1);
	// A 16-bit write at 0x3c1 reaches the status and reset registers.
	Counts wide_counts;
	Bus wide_bus;
	REQUIRE(wide_bus.add(0x3c0, AcpiPm::kPortCount, make_pm(wide_counts)).ok());
	uint8_t pair[2] = {AcpiPm::kWakeStatus, AcpiPm::kResetValue};
	REQUIRE(wide_bus.write(0x3c1, pair));
	CHECK(wide_counts.reset == 1);
	CHECK(wide_counts.power_off == 0);
}

TEST_CASE("AcpiPm: racing vCPUs power off once; empty callbacks are allowed", "[acpi_pm]")
{
	Counts counts;
	auto pm = make_pm(counts);
	std::vector<std::thread> vcpus;
	for (int i = 0; i < 8; ++i)
		vcpus.emplace_back([&pm] {
			for (int j = 0; j < 100; ++j)
				write(*pm, AcpiPm::kSleepControlOffset, sleep_control(5, true));
		});
	for (auto &vcpu : vcpus)
		vcpu.join();
	CHECK(counts.power_off == 1);

	AcpiPm silent({}, {});
	write(silent, AcpiPm::kSleepControlOffset, sleep_control(5, true));
	write(silent, AcpiPm::kResetOffset, AcpiPm::kResetValue);
}
