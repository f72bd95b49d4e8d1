#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "devices/acpi_pm.h"
#include "vmm/event_loop.h"
#include "vmm/layout.h"
#include "vmm/legacy_devices.h"

using kairos::devices::Bus;
using kairos::devices::IrqLine;
using kairos::vmm::LegacyDevices;
using kairos::vmm::LegacyEvents;
namespace layout = kairos::layout;

namespace {

class CountingLine : public IrqLine {
public:
	void set_level(bool high) override { raised += high ? 1 : 0; }
	int raised = 0;
};

struct Board {
	Bus bus;
	std::vector<uint32_t> lines_asked;
	std::map<uint32_t, std::shared_ptr<CountingLine>> lines;
	std::string console;
	int power_offs = 0;
	std::vector<std::string> resets;
	std::optional<LegacyDevices> legacy;

	Board()
	{
		LegacyEvents events;
		events.power_off = [this] { ++power_offs; };
		events.reset = [this](const char *how) { resets.emplace_back(how); };
		auto attached = LegacyDevices::attach(
			bus,
			[this](uint32_t gsi) {
				lines_asked.push_back(gsi);
				lines[gsi] = std::make_shared<CountingLine>();
				return lines[gsi];
			},
			[this](std::span<const uint8_t> bytes, kairos::devices::Serial::TransmitPath) {
				console.append(bytes.begin(), bytes.end());
			},
			std::move(events));
		REQUIRE(attached.ok());
		legacy = std::move(*attached);
	}
	void out(uint16_t port, uint8_t value) { REQUIRE(bus.write(port, {&value, 1})); }
	uint8_t in(uint16_t port)
	{
		uint8_t value = 0;
		REQUIRE(bus.read(port, {&value, 1}));
		return value;
	}
};

}  // namespace

TEST_CASE("legacy devices: COM1 and the RTC on their lines, output to the console", "[legacy]")
{
	Board board;
	CHECK(board.lines_asked == std::vector<uint32_t>{layout::kIrqCom1, layout::kIrqRtc});
	board.out(layout::kPortCom1, 'k');
	CHECK(board.console == "k");
}

TEST_CASE("legacy devices: each reset path and the ACPI power-off reach their events", "[legacy]")
{
	Board board;
	board.out(layout::kPortI8042Command, 0xfe);  // pulse the CPU reset line
	constexpr uint8_t kReset = kairos::devices::AcpiPm::kResetValue;
	board.out(layout::kPortAcpiReset, kReset);
	CHECK(board.resets == std::vector<std::string>{"the i8042", "the ACPI reset register"});
	using kairos::devices::AcpiPm;
	board.out(layout::kPortAcpiSleepControl,
		  static_cast<uint8_t>((AcpiPm::kSleepTypeSoftOff << AcpiPm::kSleepTypeShift) | AcpiPm::kSleepEnable));
	CHECK(board.power_offs == 1);
}

TEST_CASE("legacy devices: the RTC and the POST code port answer; nothing is unclaimed", "[legacy]")
{
	Board board;
	board.out(layout::kPortRtc, 0x0b);  // status register B
	board.in(static_cast<uint16_t>(layout::kPortRtc + 1));
	board.out(layout::kPortPostCode, 0x42);
	CHECK(board.in(layout::kPortPostCode) == 0);
	CHECK(board.bus.unclaimed_accesses() == 0);
}

TEST_CASE("legacy devices: the event loop raises the RTC's timed interrupts on IRQ 8, no port access needed",
	  "[legacy]")
{
	Board board;
	auto loop = kairos::vmm::EventLoop::create();
	REQUIRE(loop.ok());
	REQUIRE(board.legacy->watch(**loop).ok());
	const auto rtc_data = static_cast<uint16_t>(layout::kPortRtc + 1);
	board.out(layout::kPortRtc, 0x0a);  // register A: 8192 Hz, a tick every 122 us
	board.out(rtc_data, 0x23);
	board.out(layout::kPortRtc, 0x0b);  // register B: PIE, 24-hour BCD
	board.out(rtc_data, 0x42);
	const auto &line = board.lines.at(layout::kIrqRtc);
	for (int turn = 0; turn < 20 && line->raised == 0; turn++)
		REQUIRE((*loop)->run_once(100).ok());
	CHECK(line->raised == 1);
	board.out(layout::kPortRtc, 0x0c);  // register C: IRQF and PF
	CHECK((board.in(rtc_data)&0xc0) == 0xc0);
	CHECK(board.legacy->rtc()->interrupts_raised() == 1);
}

TEST_CASE("legacy devices: a port already taken is an error", "[legacy]")
{
	Bus bus;
	class Dummy : public kairos::devices::BusDevice {
	public:
		std::string name() const override { return "dummy"; }
		void read(uint64_t, std::span<uint8_t>) override {}
		void write(uint64_t, std::span<const uint8_t>) override {}
	};
	REQUIRE(bus.add(layout::kPortRtc, 1, std::make_shared<Dummy>()).ok());
	auto attached = LegacyDevices::attach(
		bus, [](uint32_t) { return std::make_shared<CountingLine>(); }, {},
		LegacyEvents{[] {}, [](const char *) {}});
	CHECK_FALSE(attached.ok());
}
