// ConsoleInput: host input (stdin) to the guest's UART, after
// cloud-hypervisor's serial_manager.rs. It reads only while the guest's
// driver reads and the UART has room, so typed or piped input waits in the
// pipe instead of being flushed at boot or overflowing the receiver; the
// UART says when that changes (Serial::set_input_wanted), so nothing polls.
// On a terminal it enters raw mode and watches for Ctrl-A x.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "base/event_fd.h"
#include "base/logger.h"
#include "base/result.h"
#include "devices/serial.h"
#include "vmm/console.h"
#include "vmm/event_loop.h"

namespace kairos::vmm {

class ConsoleInput {
public:
	struct Hooks {
		std::function<void()> quit;  // Ctrl-A x on a terminal
		std::function<void()> line;  // a newline reached the guest
	};

	// Reads `fd` (stdin, or a pipe in tests) for `serial` on `loop`; they
	// and `log` must outlive this. Raw mode if `fd` is a terminal.
	static Result<std::unique_ptr<ConsoleInput>> open(int fd, devices::Serial &serial, EventLoop &loop, Hooks hooks,
							  const Logger &log);

	// Watches `fd` exactly while the guest wants input; call after every
	// wake-up of the loop.
	void update_watch();
	// Back to the terminal's own mode (also on destruction).
	void restore_terminal() { raw_.reset(); }
	// False after end of file or a read error on `fd`.
	bool reading() const { return open_; }

private:
	ConsoleInput(int fd, devices::Serial &serial, EventLoop &loop, Hooks hooks, const Logger &log,
		     EventFd input_wanted)
		: fd_(fd), serial_(serial), loop_(loop), hooks_(std::move(hooks)), log_(log),
		  input_wanted_(std::move(input_wanted))
	{
	}
	void forward();

	int fd_;
	devices::Serial &serial_;
	EventLoop &loop_;
	Hooks hooks_;
	const Logger &log_;
	EventFd input_wanted_;
	std::optional<RawTerminal> raw_;
	EscapeDetector escape_;
	bool open_ = true;
	bool watched_ = false;
};

}  // namespace kairos::vmm
