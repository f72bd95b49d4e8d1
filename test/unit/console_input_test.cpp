#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/unique_fd.h"
#include "devices/serial.h"
#include "test/unit/test_log.h"
#include "vmm/console_input.h"

using kairos::UniqueFd;
using kairos::devices::IrqLine;
using kairos::devices::Serial;
using kairos::vmm::ConsoleInput;
using kairos::vmm::EventLoop;

namespace {

constexpr uint64_t kData = 0;
constexpr uint64_t kIer = 1;
constexpr uint64_t kIir = 2;
constexpr uint64_t kFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint8_t kIerReceivedData = 0x01;
constexpr uint8_t kMcrOut2 = 0x08;

struct Pipe {
	UniqueFd read_end;
	UniqueFd write_end;
	Pipe()
	{
		int fds[2];
		REQUIRE(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
		read_end.reset(fds[0]);
		write_end.reset(fds[1]);
	}
	void send(const std::string &text)
	{
		REQUIRE(write(write_end.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
	}
};

uint8_t in(Serial &serial, uint64_t offset)
{
	uint8_t value = 0;
	serial.read(offset, {&value, 1});
	return value;
}

std::string drain(Serial &serial)
{
	std::string text;
	while (in(serial, kLsr) & 0x01)
		text.push_back(static_cast<char>(in(serial, kData)));
	return text;
}

void out(Serial &serial, uint64_t offset, uint8_t value)
{
	serial.write(offset, {&value, 1});
}

// What Linux's 8250 driver sets up on a 16550A opened at 9600 baud 8N1:
// FIFOs with trigger level 8, the received-data interrupt, OUT2.
void open_like_linux(Serial &serial)
{
	out(serial, kLcr, 0x03);
	out(serial, kFcr, 0x81);
	out(serial, kMcr, kMcrOut2);
	out(serial, kIer, kIerReceivedData);
}

struct CountingIrqLine : IrqLine {
	void set_level(bool high) override
	{
		level = high;
		rises += high ? 1 : 0;
	}
	bool level = false;
	int rises = 0;
};

// Runs the loop as Machine::run does until done() or 5 s have passed.
void pump_until(EventLoop &loop, ConsoleInput &input, const std::function<bool()> &done)
{
	auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (!done() && std::chrono::steady_clock::now() < give_up) {
		input.update_watch();
		REQUIRE(loop.run_once(20).ok());
	}
	input.update_watch();
}

// Runs the loop as Machine::run does, until nothing happens for 50 ms.
void pump(EventLoop &loop, ConsoleInput &input)
{
	for (int i = 0; i < 20; ++i) {
		input.update_watch();
		uint64_t before = loop.wakeups();
		REQUIRE(loop.run_once(50).ok());
		if (loop.wakeups() == before + 1 && i > 0 && !input.reading())
			break;
	}
	input.update_watch();
}

}  // namespace

TEST_CASE("console input: waits for the guest's driver, then forwards lines", "[console]")
{
	Pipe pipe;
	Serial serial(nullptr, {});
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	int lines = 0;
	auto input = ConsoleInput::open(pipe.read_end.get(), serial, **loop, {nullptr, [&] { ++lines; }}, test_log());
	REQUIRE(input.ok());

	pipe.send("early\n");
	pump(**loop, **input);
	CHECK(drain(serial).empty());  // the guest does not read yet: kept in the pipe
	CHECK(lines == 0);

	// The guest's driver takes each batch as it comes, as on an interrupt.
	uint8_t enable = kIerReceivedData;
	serial.write(kIer, {&enable, 1});
	std::string got;
	pump_until(**loop, **input, [&] {
		got += drain(serial);
		return got == "early\n";
	});
	CHECK(got == "early\n");
	CHECK(lines == 1);

	pipe.send("ls");
	got.clear();
	pump_until(**loop, **input, [&] {
		got += drain(serial);
		return got == "ls";
	});
	CHECK(got == "ls");
	CHECK(lines == 1);  // no newline, no console event
	CHECK((*input)->reading());

	pipe.write_end.reset();  // EOF: the guest keeps running without input
	pump_until(**loop, **input, [&] { return !(*input)->reading(); });
	CHECK_FALSE((*input)->reading());
}

TEST_CASE("console input: a full UART holds input back until the guest reads", "[console]")
{
	Pipe pipe;
	Serial serial(nullptr, {});
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto input = ConsoleInput::open(pipe.read_end.get(), serial, **loop, {}, test_log());
	REQUIRE(input.ok());
	uint8_t enable = kIerReceivedData;
	serial.write(kIer, {&enable, 1});

	std::string many(Serial::kFifoSize + 100, 'a');
	pipe.send(many);
	pump(**loop, **input);
	CHECK(serial.input_space() == 0);
	// The rest is still in the pipe, not dropped: reading frees room and
	// the UART's wake-up brings it in, at the line's pace.
	std::string got = drain(serial);
	pump_until(**loop, **input, [&] {
		got += drain(serial);
		return got.size() == many.size();
	});
	CHECK(got == many);
	CHECK((in(serial, kLsr) & 0x02) == 0);  // no overrun
}

TEST_CASE("console input: a flood reaches the guest at its line rate, a trigger level per interrupt", "[console]")
{
	// `yes | kairos run` (issue 12, #10): the guest took every byte the
	// host had as fast as it came, two exits each, and never booted.
	Pipe pipe;
	auto irq = std::make_shared<CountingIrqLine>();
	Serial serial(irq, {});
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto input = ConsoleInput::open(pipe.read_end.get(), serial, **loop, {}, test_log());
	REQUIRE(input.ok());
	std::string flood;
	for (int i = 0; i < 8192; ++i)
		flood += "y\n";
	pipe.send(flood);
	open_like_linux(serial);

	// The guest drains the FIFO on each interrupt, as the 8250 driver does.
	const uint64_t start = kairos::monotonic_now_ns();
	size_t received = 0;
	pump_until(**loop, **input, [&] {
		if (irq->level)
			received += drain(serial).size();
		return kairos::monotonic_now_ns() - start > 300'000'000;
	});
	received += drain(serial).size();
	const uint64_t elapsed = kairos::monotonic_now_ns() - start;
	const uint64_t character = serial.character_time_ns();
	INFO("received " << received << " in " << elapsed << " ns, " << irq->rises << " interrupts");
	CHECK(received <= elapsed / character + Serial::kFifoSize);
	CHECK(received >= 3 * Serial::kFifoSize);  // it keeps flowing (about 290 on an idle host)
	// A trigger level (8) per interrupt, plus the first FIFO-full.
	CHECK(irq->rises <= static_cast<int>(received / 8) + 2);
}

TEST_CASE("console input: a line below the trigger level reaches the guest through the character timeout", "[console]")
{
	Pipe pipe;
	auto irq = std::make_shared<CountingIrqLine>();
	Serial serial(irq, {});
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto input = ConsoleInput::open(pipe.read_end.get(), serial, **loop, {}, test_log());
	REQUIRE(input.ok());
	open_like_linux(serial);

	pipe.send("ls\n");
	pump_until(**loop, **input, [&] { return irq->level; });
	REQUIRE(irq->level);
	CHECK(in(serial, kIir) == 0xcc);  // FIFOs on, character timeout
	CHECK(drain(serial) == "ls\n");
	CHECK_FALSE(irq->level);
}

TEST_CASE("console input: a guest slow to take a batch rests three times as long before the next", "[console]")
{
	// In the emulated test machine an exit costs about a millisecond, so
	// even the line rate kept the guest busy taking bytes: the pace also
	// follows how long the guest takes.
	Pipe pipe;
	auto irq = std::make_shared<CountingIrqLine>();
	Serial serial(irq, {});
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto input = ConsoleInput::open(pipe.read_end.get(), serial, **loop, {}, test_log());
	REQUIRE(input.ok());
	std::string flood(32768, 'y');
	pipe.send(flood);
	open_like_linux(serial);

	// The guest empties the FIFO 20 ms after each interrupt.
	constexpr uint64_t kGuestTakes = 20'000'000;
	const uint64_t start = kairos::monotonic_now_ns();
	uint64_t seen = 0;
	size_t received = 0;
	pump_until(**loop, **input, [&] {
		uint64_t now = kairos::monotonic_now_ns();
		if (irq->level && seen == 0)
			seen = now;
		if (seen != 0 && now - seen >= kGuestTakes) {
			received += drain(serial).size();
			seen = 0;
		}
		return now - start > 800'000'000;
	});
	// Each batch costs 20 ms of the guest, then 60 ms of rest: at most one
	// per 80 ms, against one per 20 ms without the rest.
	INFO("received " << received << ", " << irq->rises << " interrupts");
	CHECK(irq->rises >= 2);
	CHECK(irq->rises <= 800 / 80 + 1);
	CHECK(received <= static_cast<size_t>(irq->rises) * Serial::kFifoSize);
}

TEST_CASE("console input: Ctrl-A x on a terminal quits while the guest takes no input", "[console]")
{
	// Input is read ahead of the guest, so the escape is seen however slow
	// (or stuck) the guest's reading is.
	UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
	REQUIRE(master.get() >= 0);
	REQUIRE(grantpt(master.get()) == 0);
	REQUIRE(unlockpt(master.get()) == 0);
	UniqueFd terminal(::open(ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
	REQUIRE(terminal.get() >= 0);

	Serial serial(nullptr, {});
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	bool quit = false;
	auto input = ConsoleInput::open(terminal.get(), serial, **loop, {[&] { quit = true; }, nullptr}, test_log());
	REQUIRE(input.ok());
	std::string typed = "typed while the guest is busy\x01x";
	REQUIRE(write(master.get(), typed.data(), typed.size()) == static_cast<ssize_t>(typed.size()));
	pump_until(**loop, **input, [&] { return quit; });
	CHECK(quit);
	CHECK(drain(serial).empty());  // the guest's driver never asked for input
}
