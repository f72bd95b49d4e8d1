#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "test/unit/test_log.h"
#include "vmm/console.h"

using kairos::UniqueFd;
using kairos::vmm::ConsoleOutput;
using kairos::vmm::ConsoleSink;
using kairos::vmm::EventLoop;
using kairos::vmm::terminal_of_another_job;

namespace {

// One page: what a reader that never reads lets through before writes
// would block (pipe(7), F_SETPIPE_SZ rounds up to a page).
constexpr int kPipeBytes = 4096;

// A blocking pipe, as a shell gives stdout: only the console's own
// description of it may be non-blocking.
struct StuckPipe {
	UniqueFd read_end;
	UniqueFd write_end;
	StuckPipe()
	{
		int fds[2];
		REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
		read_end.reset(fds[0]);
		write_end.reset(fds[1]);
		REQUIRE(fcntl(write_end.get(), F_SETPIPE_SZ, kPipeBytes) == kPipeBytes);
	}
	// Everything in the pipe now, without waiting.
	std::string drain()
	{
		std::string text;
		char buffer[kPipeBytes];
		int flags = fcntl(read_end.get(), F_GETFL);
		fcntl(read_end.get(), F_SETFL, flags | O_NONBLOCK);
		for (ssize_t got; (got = read(read_end.get(), buffer, sizeof(buffer))) > 0;)
			text.append(buffer, static_cast<size_t>(got));
		fcntl(read_end.get(), F_SETFL, flags);
		return text;
	}
};

// Byte i of what the guest sends: a pattern that shows loss and reordering.
uint8_t pattern(size_t i)
{
	return static_cast<uint8_t>(i % 251);
}

// As the UART calls it: one byte at a time, stream positions [from, to).
void transmit(ConsoleOutput &console, size_t from, size_t to)
{
	for (size_t i = from; i < to; ++i) {
		uint8_t byte = pattern(i);
		console.write({&byte, 1}, true);
	}
}

std::string expected(size_t from, size_t to)
{
	std::string text;
	for (size_t i = from; i < to; ++i)
		text.push_back(static_cast<char>(pattern(i)));
	return text;
}

std::unique_ptr<ConsoleOutput> console_on(int fd, uint64_t limit_bytes = ConsoleOutput::kNoLimit)
{
	auto console = ConsoleOutput::create(ConsoleSink::inherited(fd), test_log(), limit_bytes);
	REQUIRE(console.ok());
	return std::move(*console);
}

}  // namespace

TEST_CASE("console output: a reader that never reads costs output, never a blocked vCPU", "[console]")
{
	StuckPipe pipe;
	auto console = console_on(pipe.write_end.get());
	constexpr size_t kBuffer = ConsoleOutput::kBufferBytes;
	constexpr size_t kOver = 1000;

	// On a vCPU thread, as the UART calls it. Before issue 12's fix the
	// write blocked here once the pipe was full, for as long as nobody read.
	auto writer = std::async(std::launch::async, [&] {
		transmit(*console, 0, kBuffer + kOver);
		console->flush();  // the loop's part: fills the pipe, then would block
	});
	bool returned = writer.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
	// The old code's write blocks until read: read on, so that the test ends.
	while (writer.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready)
		pipe.drain();
	REQUIRE(returned);

	// The buffer took its 64 KiB, the pipe one page of them; the rest of
	// what the guest sent is dropped and counted to the byte.
	CHECK(console->bytes_transmitted() == kBuffer + kOver);
	CHECK(console->bytes_dropped() == kOver);
	CHECK(console->bytes_buffered() == kBuffer - kPipeBytes);
	CHECK_FALSE(console->flush());  // still stuck: nothing more goes out

	// Room for exactly the page the pipe took; the rest drops.
	transmit(*console, kBuffer + kOver, kBuffer + kOver + 5000);
	CHECK(console->bytes_buffered() == kBuffer);
	CHECK(console->bytes_dropped() == kOver + 5000 - kPipeBytes);

	// The reader drains: what was buffered comes out, in order, and
	// nothing else.
	std::string received;
	for (int round = 0; round < 100 && !console->flush(); ++round)
		received += pipe.drain();
	received += pipe.drain();
	CHECK(console->bytes_buffered() == 0);
	std::string sent = expected(0, kBuffer) + expected(kBuffer + kOver, kBuffer + kOver + kPipeBytes);
	CHECK(received.size() == sent.size());
	CHECK(received == sent);
}

TEST_CASE("console output: stdout's own description stays blocking", "[console]")
{
	// O_NONBLOCK on a description the shell shares would make its writes
	// fail with EAGAIN; the console reopens the pipe for itself instead.
	StuckPipe pipe;
	auto sink = ConsoleSink::inherited(pipe.write_end.get());
	CHECK(sink.kind() == ConsoleSink::Kind::Private);
	CHECK(sink.fd() != pipe.write_end.get());
	CHECK((fcntl(pipe.write_end.get(), F_GETFL) & O_NONBLOCK) == 0);
	CHECK((fcntl(sink.fd(), F_GETFL) & O_NONBLOCK) != 0);
}

TEST_CASE("console output: the event loop writes it out, also once a stuck reader drains", "[console]")
{
	StuckPipe pipe;
	auto console = console_on(pipe.write_end.get());
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	REQUIRE(console->attach(**loop).ok());

	transmit(*console, 0, 100);
	REQUIRE((*loop)->run_once(100).ok());  // woken by the write
	CHECK(pipe.drain() == expected(0, 100));

	transmit(*console, 100, 100 + 3 * kPipeBytes);
	for (int i = 0; i < 3; ++i)
		REQUIRE((*loop)->run_once(100).ok());
	std::string received = pipe.drain();
	CHECK(console->bytes_buffered() > 0);
	// The pipe has room again: the loop hears so and writes the rest.
	for (int i = 0; i < 20 && console->bytes_buffered() > 0; ++i) {
		REQUIRE((*loop)->run_once(100).ok());
		received += pipe.drain();
	}
	CHECK(received == expected(100, 100 + 3 * kPipeBytes));
	CHECK(console->bytes_dropped() == 0);
}

TEST_CASE("console output: at the stop, a bounded wait, then what is left is dropped", "[console]")
{
	StuckPipe pipe;
	auto console = console_on(pipe.write_end.get());
	transmit(*console, 0, 2 * kPipeBytes);
	auto started = std::chrono::steady_clock::now();
	console->drain(std::chrono::milliseconds(200));
	auto waited = std::chrono::steady_clock::now() - started;
	CHECK(waited >= std::chrono::milliseconds(150));
	CHECK(waited < std::chrono::seconds(2));
	CHECK(console->bytes_buffered() == 0);
	CHECK(console->bytes_dropped() == kPipeBytes);
	CHECK(pipe.drain() == expected(0, kPipeBytes));
}

TEST_CASE("console output: a reader that went away drops and counts, and the guest's lines are still seen", "[console]")
{
	StuckPipe pipe;
	auto console = console_on(pipe.write_end.get());
	int panics = 0;
	console->watch_line("Kernel panic", [&] { ++panics; });
	pipe.read_end.reset();
	signal(SIGPIPE, SIG_IGN);  // as kairos run does: EPIPE instead
	std::string line = "Kernel panic - not syncing\n";
	console->write({reinterpret_cast<const uint8_t *>(line.data()), line.size()}, true);
	CHECK(console->flush());  // EPIPE: nothing left to try
	CHECK(console->bytes_dropped() == line.size());
	CHECK(panics == 1);
	transmit(*console, 0, 10);
	CHECK(console->bytes_dropped() == line.size() + 10);
	CHECK(console->bytes_buffered() == 0);
}

TEST_CASE("console output: a file takes at most its cap", "[console]")
{
	char path[] = "/tmp/kairos-console-test-XXXXXX";
	UniqueFd file(mkstemp(path));
	REQUIRE(file);
	unlink(path);
	auto console = console_on(file.get(), 1000);
	transmit(*console, 0, 1500);
	CHECK(console->flush());
	CHECK(console->bytes_dropped() == 500);
	CHECK(lseek(file.get(), 0, SEEK_END) == 1000);
}

namespace {

// In a child: a new session whose controlling terminal is a fresh pty
// (a session leader without one acquires the first terminal it opens),
// then the answer for the session's own foreground group and for a
// grandchild moved to a group of its own, as a shell's `&` with job
// control does. Exit status: bit 0 set when the foreground group was
// wrongly called another job's, bit 1 when the background group was not.
int job_control_answers()
{
	if (setsid() < 0)
		return 8;
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
		return 8;
	int terminal = open(ptsname(master), O_RDWR);  // becomes the controlling terminal
	if (terminal < 0 || tcgetpgrp(terminal) != getpgrp())
		return 8;
	int wrong = terminal_of_another_job(terminal) ? 1 : 0;
	pid_t background = fork();
	if (background == 0) {
		if (setpgid(0, 0) != 0)
			_exit(8);
		_exit(terminal_of_another_job(terminal) ? 0 : 2);
	}
	int status = 0;
	if (background < 0 || waitpid(background, &status, 0) != background || !WIFEXITED(status))
		return 8;
	return wrong | WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("console input: a background job's terminal is recognised, its foreground's is not", "[console]")
{
	// Not a terminal at all, or a pipe: never another job's.
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	CHECK_FALSE(terminal_of_another_job(fds[0]));
	close(fds[0]);
	close(fds[1]);
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0)
		_exit(job_control_answers());
	int status = 0;
	REQUIRE(waitpid(child, &status, 0) == child);
	REQUIRE(WIFEXITED(status));
	// 8: the pty or the session could not be set up, which is the test's
	// failure, not the function's.
	CHECK(WEXITSTATUS(status) == 0);
}
