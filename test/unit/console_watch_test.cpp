// The console's line watches: only the kernel's own output (the UART's
// polled path) can fire them; what guest programs print never does.
#include <catch2/catch.hpp>

#include <string_view>

#include "devices/serial.h"
#include "test/unit/test_log.h"
#include "vmm/console.h"

using kairos::devices::Serial;
using kairos::vmm::ConsoleOutput;

namespace {

std::span<const uint8_t> bytes_of(std::string_view text)
{
	return {reinterpret_cast<const uint8_t *>(text.data()), text.size()};
}

}  // namespace

TEST_CASE("console: a banner printed by a guest program fires no watch", "[console]")
{
	auto created = ConsoleOutput::create(kairos::vmm::ConsoleSink::discard(), test_log());
	REQUIRE(created.ok());
	auto console = std::move(created).value();
	int panics = 0;
	console->watch_line(kairos::vmm::kPanicBanner, [&] { ++panics; });
	auto sink = console->serial_sink();

	// Issue 12, #4: echo "Kernel panic - not syncing: x" in the guest shell.
	sink(bytes_of("Kernel panic - not syncing: x\r\n"), Serial::TransmitPath::Interrupt);
	CHECK(panics == 0);
	CHECK(console->bytes_transmitted() == 31);  // still shown to the user

	// The kernel's line, even when a program's bytes come in between.
	sink(bytes_of("Kernel panic - "), Serial::TransmitPath::Polled);
	sink(bytes_of("$ ls\r\n"), Serial::TransmitPath::Interrupt);
	sink(bytes_of("not syncing: Attempted to kill init!\r\n"), Serial::TransmitPath::Polled);
	CHECK(panics == 1);
}

TEST_CASE("console: a watch fires once, on a line that contains its text", "[console]")
{
	auto created = ConsoleOutput::create(kairos::vmm::ConsoleSink::discard(), test_log());
	REQUIRE(created.ok());
	auto console = std::move(created).value();
	int halts = 0;
	console->watch_line(kairos::vmm::kHaltBanner, [&] { ++halts; });
	console->write(bytes_of("[   12.5] reboot: System "), true);
	CHECK(halts == 0);  // not a whole line yet
	console->write(bytes_of("halted\n"), true);
	CHECK(halts == 1);
	console->write(bytes_of("reboot: System halted\n"), true);
	CHECK(halts == 1);
}
