#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "base/unique_fd.h"
#include "devices/serial.h"
#include "test/unit/test_log.h"
#include "vmm/console_input.h"

using kairos::UniqueFd;
using kairos::devices::Serial;
using kairos::vmm::ConsoleInput;
using kairos::vmm::EventLoop;

namespace {

constexpr uint64_t kData = 0;
constexpr uint64_t kIer = 1;
constexpr uint64_t kLsr = 5;
constexpr uint8_t kIerReceivedData = 0x01;

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

	uint8_t enable = kIerReceivedData;
	serial.write(kIer, {&enable, 1});
	pump(**loop, **input);
	CHECK(drain(serial) == "early\n");
	CHECK(lines == 1);

	pipe.send("ls");
	pump(**loop, **input);
	CHECK(drain(serial) == "ls");
	CHECK(lines == 1);  // no newline, no console event
	CHECK((*input)->reading());

	pipe.write_end.reset();  // EOF: the guest keeps running without input
	pump(**loop, **input);
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

	std::string many(Serial::kInputCapacity + 100, 'a');
	pipe.send(many);
	pump(**loop, **input);
	CHECK(serial.input_space() == 0);
	// The rest is still in the pipe, not dropped: reading frees room and
	// the UART's wake-up brings it in.
	std::string got = drain(serial);
	pump(**loop, **input);
	got += drain(serial);
	CHECK(got.size() == many.size());
}
