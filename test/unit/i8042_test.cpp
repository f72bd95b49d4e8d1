#include <catch2/catch.hpp>

#include "devices/bus.h"
#include "devices/i8042.h"

using kairos::devices::Bus;
using kairos::devices::I8042;

namespace {

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusCommand = 0x08;
constexpr uint8_t kStatusUnlocked = 0x10;
constexpr uint8_t kStatusAuxData = 0x20;

struct Controller {
	int resets = 0;
	I8042 i8042{[this] { resets++; }};

	uint8_t status()
	{
		uint8_t value = 0;
		i8042.command_port()->read(0, {&value, 1});
		return value;
	}
	uint8_t data()
	{
		uint8_t value = 0;
		i8042.data_port()->read(0, {&value, 1});
		return value;
	}
	void command(uint8_t value) { i8042.command_port()->write(0, {&value, 1}); }
	void write_data(uint8_t value) { i8042.data_port()->write(0, {&value, 1}); }
	// What Linux's i8042_command does for a command with one result byte.
	uint8_t ask(uint8_t value)
	{
		command(value);
		REQUIRE((status() & kStatusOutputFull) != 0);
		return data();
	}
};

}  // namespace

TEST_CASE("i8042: status at reset shows an idle, present controller", "[i8042]")
{
	Controller controller;
	uint8_t status = controller.status();
	CHECK(status != 0xff);  // Linux's "No controller found"
	CHECK((status & kStatusOutputFull) == 0);
	CHECK((status & 0x02) == 0);  // input buffer never full
	CHECK((status & kStatusUnlocked) != 0);
	CHECK((status & kStatusSystemFlag) != 0);
}

TEST_CASE("i8042: self-test and interface tests answer success", "[i8042]")
{
	Controller controller;
	CHECK(controller.ask(0xaa) == 0x55);
	CHECK((controller.status() & kStatusOutputFull) == 0);  // read empties it
	CHECK(controller.ask(0xab) == 0x00);
	CHECK(controller.ask(0xa9) == 0x00);
	CHECK(controller.resets == 0);
}

TEST_CASE("i8042: the command byte is read with 0x20 and written with 0x60", "[i8042]")
{
	Controller controller;
	CHECK(controller.ask(0x20) == 0x45);  // keyboard IRQ, system flag, translate
	controller.command(0x60);
	CHECK((controller.status() & kStatusCommand) != 0);
	controller.write_data(0x30);
	CHECK((controller.status() & kStatusCommand) == 0);
	CHECK(controller.ask(0x20) == 0x30);
	CHECK((controller.status() & kStatusSystemFlag) == 0);  // follows bit 2
}

TEST_CASE("i8042: port enable and disable commands edit the command byte", "[i8042]")
{
	Controller controller;
	controller.command(0xa7);
	CHECK((controller.ask(0x20) & 0x20) != 0);
	controller.command(0xa8);
	CHECK((controller.ask(0x20) & 0x20) == 0);
	controller.command(0xad);
	CHECK((controller.ask(0x20) & 0x10) != 0);
	controller.command(0xae);
	CHECK((controller.ask(0x20) & 0x10) == 0);
}

TEST_CASE("i8042: 0xfe pulses reset once per command", "[i8042]")
{
	Controller controller;
	controller.command(0xfe);
	CHECK(controller.resets == 1);
	controller.command(0xff);  // pulses no line
	CHECK(controller.resets == 1);
	controller.command(0xfe);  // reboot=k repeats it; each one counts
	CHECK(controller.resets == 2);
}

TEST_CASE("i8042: writing output port bit 0 clear resets", "[i8042]")
{
	Controller controller;
	controller.command(0xd1);
	controller.write_data(0xdf);  // A20 on, reset line high: no reset
	CHECK(controller.resets == 0);
	CHECK(controller.ask(0xd0) == 0xdf);
	controller.command(0xd1);
	controller.write_data(0xde);
	CHECK(controller.resets == 1);
}

TEST_CASE("i8042: unknown commands and keyboard bytes are ignored", "[i8042]")
{
	Controller controller;
	controller.command(0x12);
	CHECK((controller.status() & kStatusOutputFull) == 0);
	controller.write_data(0xff);  // keyboard reset: no keyboard, no answer
	CHECK((controller.status() & kStatusOutputFull) == 0);
	controller.command(0xd4);  // a byte for the mouse: dropped
	controller.write_data(0xf4);
	CHECK((controller.status() & kStatusOutputFull) == 0);
	CHECK(controller.resets == 0);
	CHECK(controller.ask(0xaa) == 0x55);
}

TEST_CASE("i8042: a new command abandons a missing parameter", "[i8042]")
{
	Controller controller;
	controller.command(0x60);
	controller.command(0xaa);
	CHECK(controller.data() == 0x55);
	controller.write_data(0x00);  // not taken as the command byte
	CHECK(controller.ask(0x20) == 0x45);
}

TEST_CASE("i8042: output-buffer writes come back as keyboard or aux data", "[i8042]")
{
	Controller controller;
	controller.command(0xd2);
	controller.write_data(0x1c);
	CHECK((controller.status() & (kStatusOutputFull | kStatusAuxData)) == kStatusOutputFull);
	CHECK(controller.data() == 0x1c);

	controller.command(0xd3);  // Linux's AUX_LOOP test
	controller.write_data(0x5a);
	CHECK((controller.status() & (kStatusOutputFull | kStatusAuxData)) == (kStatusOutputFull | kStatusAuxData));
	CHECK(controller.data() == 0x5a);
	CHECK((controller.status() & (kStatusOutputFull | kStatusAuxData)) == 0);
}

TEST_CASE("i8042: the two ports register apart, leaving port 0x61 free", "[i8042]")
{
	Bus bus;
	int resets = 0;
	I8042 i8042([&] { resets++; });
	REQUIRE(bus.add(0x60, 1, i8042.data_port()).ok());
	REQUIRE(bus.add(0x64, 1, i8042.command_port()).ok());
	CHECK(i8042.data_port()->name() != i8042.command_port()->name());

	uint8_t byte = 0xaa;
	REQUIRE(bus.write(0x64, {&byte, 1}));
	REQUIRE(bus.read(0x64, {&byte, 1}));
	CHECK((byte & kStatusOutputFull) != 0);
	REQUIRE(bus.read(0x60, {&byte, 1}));
	CHECK(byte == 0x55);
	CHECK_FALSE(bus.read(0x61, {&byte, 1}));

	// A 16-bit read at 0x60 only decodes its first byte.
	uint8_t wide[2] = {};
	i8042.data_port()->read(0, wide);
	CHECK(wide[1] == 0xff);

	byte = 0xfe;
	REQUIRE(bus.write(0x64, {&byte, 1}));
	CHECK(resets == 1);
}
