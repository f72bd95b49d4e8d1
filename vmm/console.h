// The guest console's host side: where serial output goes, what it tells us
// (the kernel's panic banner), and the terminal stdin feeds the guest from.
#pragma once

#include <termios.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/event_fd.h"
#include "base/logger.h"
#include "base/result.h"
#include "devices/serial.h"
#include "vmm/config.h"
#include "vmm/console_sink.h"
#include "vmm/event_loop.h"

namespace kairos::vmm {

// Linux prints this line first when it panics (kernel/panic.c), before it
// resets the machine under panic=-1; a reset that follows it is a panic.
// Both banners count only as the kernel's console output (write's watched).
inline constexpr const char *kPanicBanner = "Kernel panic - not syncing";
// Linux prints this when it halts for good (kernel/reboot.c), e.g. a
// poweroff without ACPI: every CPU then sits in HLT with interrupts off,
// which KVM handles in the kernel, so the console is all we get to see.
inline constexpr const char *kHaltBanner = "reboot: System halted";

// The guest's serial output on its way out (issue 12). vCPU threads call
// write under the UART's lock, so it never blocks: it scans for the lines
// above, appends to a bounded buffer and wakes the event loop, which writes
// the buffer out whenever the sink takes it (vmm/console_sink.h). Bytes that
// do not fit are dropped and counted, as Firecracker's serial does; the
// first drop gets one warning.
class ConsoleOutput {
public:
	// Enough for a burst of boot messages while the reader is slow; more
	// would only delay the moment a stuck reader costs output.
	static constexpr size_t kBufferBytes = 64 * 1024;
	static constexpr uint64_t kNoLimit = UINT64_MAX;

	// At most limit_bytes reach the sink (console.max_file_mib); the rest
	// is dropped and counted. `log` gets the warnings and outlives this.
	static Result<std::unique_ptr<ConsoleOutput>> create(ConsoleSink sink, const Logger &log,
							     uint64_t limit_bytes = kNoLimit);
	// What config.console names: stdout, a file, or nothing.
	static Result<std::unique_ptr<ConsoleOutput>> for_config(const Config::Console &console, const Logger &log);

	// Calls action (once) when a line of the watched output (see write)
	// contains text. Register before the guest runs; actions run on a
	// vCPU thread.
	void watch_line(std::string text, std::function<void()> action);

	// Called from vCPU threads with the bytes the guest transmitted.
	// watched: the bytes may be the kernel's own messages (the UART's
	// polled path); what guest programs print is never watched, so no
	// program can stop the VM or choose its exit status by printing a
	// banner (issue 12, #4).
	void write(std::span<const uint8_t> bytes, bool watched);
	// The UART's output callback: writes through this, watching only the
	// polled path (Serial::TransmitPath). Valid while this object lives.
	devices::Serial::OutputCallback serial_sink();

	// From here on the loop writes the buffer out: when write wakes it and,
	// while the sink would block, whenever the sink becomes writable.
	Status attach(EventLoop &loop);
	// Writes what the sink takes now, without blocking; true when nothing
	// is left (or left to try: a sink that failed drops everything).
	bool flush();
	// At the stop, after the vCPUs: flushes, waiting for the sink up to
	// budget in all, then drops and counts what is left.
	void drain(std::chrono::milliseconds budget);

	// Every byte the guest transmitted, delivered or not.
	uint64_t bytes_transmitted() const { return transmitted_.load(); }
	uint64_t bytes_dropped() const { return dropped_.load(); }
	size_t bytes_buffered() const;

private:
	ConsoleOutput(ConsoleSink sink, const Logger &log, EventFd wake, uint64_t limit_bytes);
	void scan(uint8_t byte);
	size_t append(std::span<const uint8_t> bytes);  // requires mutex_
	void drop(size_t count, const char *reason);    // requires mutex_
	void on_ready();
	void warn_once();

	ConsoleSink sink_;
	const Logger &log_;
	EventFd wake_;
	const uint64_t limit_bytes_;
	// The loop thread's: where to watch for POLLOUT, and whether it does.
	EventLoop *loop_ = nullptr;
	bool watching_writable_ = false;
	bool warned_ = false;
	std::mutex flush_mutex_;  // one flush at a time; held without mutex_ while writing
	mutable std::mutex mutex_;
	std::vector<uint8_t> ring_;
	size_t head_ = 0;
	size_t count_ = 0;
	uint64_t accepted_ = 0;  // bytes into the buffer over the run, for limit_bytes_
	bool failed_ = false;    // the sink failed (EPIPE: the reader went away)
	const char *drop_reason_ = nullptr;
	std::string line_;
	struct LineWatch {
		std::string text;
		std::function<void()> action;
		bool fired = false;
	};
	std::vector<LineWatch> watches_;
	std::atomic<uint64_t> transmitted_{0};
	std::atomic<uint64_t> dropped_{0};
};

// How long the stop waits for a slow console reader before it drops the
// rest: normal runs lose nothing, a stuck reader costs one second.
inline constexpr std::chrono::milliseconds kConsoleDrainBudget{1000};

// True when fd is a terminal whose foreground is another process group than
// ours: kairos started as a background job (`kairos run vm.json &` in an
// interactive shell). Raw mode (tcsetattr) or a read there would stop the
// whole process with SIGTTOU or SIGTTIN, as job control does to any
// background job; a terminal that is not ours to control, or no terminal,
// is false.
bool terminal_of_another_job(int fd);

// Puts a terminal into raw mode for the guest's line discipline and restores
// it on destruction (and so on every exit path).
class RawTerminal {
public:
	static Result<RawTerminal> enter(int fd);
	RawTerminal(RawTerminal &&other) noexcept;
	~RawTerminal();
	RawTerminal(const RawTerminal &) = delete;
	RawTerminal &operator=(const RawTerminal &) = delete;

private:
	RawTerminal(int fd, const termios &saved) : fd_(fd), saved_(saved) {}
	int fd_;
	termios saved_;
};

// The escape sequence on an interactive console: Ctrl-A then x quits, as
// in QEMU's -nographic. Feed it each input byte; it says what to do.
class EscapeDetector {
public:
	enum class Action { Forward, Swallow, Quit };
	Action feed(uint8_t byte);

private:
	bool after_escape_ = false;
};

}  // namespace kairos::vmm
