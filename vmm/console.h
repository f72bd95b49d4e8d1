// The guest console's host side: where serial output goes, what it tells us
// (the kernel's panic banner), and the terminal stdin feeds the guest from.
#pragma once

#include <termios.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "devices/serial.h"
#include "vmm/config.h"

namespace kairos::vmm {

// Linux prints this line first when it panics (kernel/panic.c), before it
// resets the machine under panic=-1; a reset that follows it is a panic.
// Both banners count only as the kernel's console output (write's watched).
inline constexpr const char *kPanicBanner = "Kernel panic - not syncing";
// Linux prints this when it halts for good (kernel/reboot.c), e.g. a
// poweroff without ACPI: every CPU then sits in HLT with interrupts off,
// which KVM handles in the kernel, so the console is all we get to see.
inline constexpr const char *kHaltBanner = "reboot: System halted";

class ConsoleOutput {
public:
	// fd < 0 drops output (console.output "none") but still watches it.
	explicit ConsoleOutput(UniqueFd owned_fd, int fd) : owned_(std::move(owned_fd)), fd_(fd) {}
	static std::unique_ptr<ConsoleOutput> to_stdout();
	static Result<std::unique_ptr<ConsoleOutput>> to_file(const std::filesystem::path &path);
	static std::unique_ptr<ConsoleOutput> discard();
	// What config.console.output names: stdout, a file, or nothing.
	static Result<std::unique_ptr<ConsoleOutput>> for_config(const Config::Console &console);

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
	uint64_t bytes_written() const { return bytes_.load(); }

private:
	void scan(uint8_t byte);

	UniqueFd owned_;
	int fd_;
	std::mutex mutex_;
	std::string line_;
	struct LineWatch {
		std::string text;
		std::function<void()> action;
		bool fired = false;
	};
	std::vector<LineWatch> watches_;
	std::atomic<uint64_t> bytes_{0};
};

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
