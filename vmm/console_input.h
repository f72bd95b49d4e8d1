// ConsoleInput: host input (stdin) to the guest's UART, after
// cloud-hypervisor's serial_manager.rs. It reads stdin into a bounded
// buffer (kPendingCapacity; beyond it input waits in the pipe) and hands
// it to the UART only while the guest's driver reads, so typed or piped
// input is never flushed at boot nor overflows the receiver; the UART says
// when that changes (Serial::set_input_wanted), so nothing polls. Reading
// ahead of the guest keeps Ctrl-A x working while the guest takes nothing.
// Input is paced to what the guest consumes (issue 12, #10: `yes | kairos
// run` kept a 1-vCPU guest from ever reaching /init): a batch goes into an
// empty receiver FIFO, no faster than the guest's line rate (InputPacer), and
// the next waits until the guest took it all and then rested kRestPerDrain
// times as long as it took; the UART's character timeout is run here.
// On a terminal it enters raw mode and watches for Ctrl-A x.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include "base/event_fd.h"
#include "base/logger.h"
#include "base/result.h"
#include "base/timer_fd.h"
#include "devices/serial.h"
#include "vmm/console.h"
#include "vmm/event_loop.h"
#include "vmm/input_pacer.h"

namespace kairos::vmm {

class ConsoleInput {
public:
	// After the guest took time T to empty the receiver of a batch (its
	// interrupt handler: two exits a byte), the next batch waits 3 T, so
	// host input takes at most a quarter of the guest's time however slow
	// its exits are (about 1 ms each in the emulated test machine, where
	// the line rate alone still took all of it). Never longer than
	// kMaxRest, so a guest stopped for a while gets its input soon after.
	static constexpr uint64_t kRestPerDrain = 3;
	static constexpr uint64_t kMaxRestNs = 1'000'000'000;
	// Input read from stdin ahead of the guest: enough for a paste or an
	// escape typed while the guest takes nothing.
	static constexpr size_t kPendingCapacity = 4096;

	struct Hooks {
		std::function<void()> quit;  // Ctrl-A x on a terminal
		std::function<void()> line;  // a newline reached the guest
	};

	// Reads `fd` (stdin, or a pipe in tests) for `serial` on `loop`; they
	// and `log` must outlive this. Raw mode if `fd` is a terminal.
	static Result<std::unique_ptr<ConsoleInput>> open(int fd, devices::Serial &serial, EventLoop &loop, Hooks hooks,
							  const Logger &log);

	// Hands the guest what the line allows, watches `fd` while there is
	// room to read ahead, and arms the timer for the next batch and the
	// character timeout; call after every wake-up of the loop.
	void update_watch();
	// Back to the terminal's own mode (also on destruction).
	void restore_terminal() { raw_.reset(); }
	// False after end of file or a read error on `fd`.
	bool reading() const { return open_; }

private:
	ConsoleInput(int fd, devices::Serial &serial, EventLoop &loop, Hooks hooks, const Logger &log,
		     EventFd input_wanted, TimerFd timer)
		: fd_(fd), serial_(serial), loop_(loop), hooks_(std::move(hooks)), log_(log),
		  input_wanted_(std::move(input_wanted)), timer_(std::move(timer))
	{
	}
	void read_ahead();
	void note_drain(uint64_t now_ns);
	void fire_character_timeout(uint64_t now_ns);
	void deliver(uint64_t now_ns, uint64_t character_ns);
	void arm_character_timeout(uint64_t now_ns, uint64_t character_ns);
	// When the line can carry the next batch (at or before now_ns: now);
	// nullopt while there is none, the guest reads no input or has not
	// taken the last.
	std::optional<uint64_t> next_batch_at(uint64_t now_ns, uint64_t character_ns) const;
	void set_watch(bool want);
	void arm_timer(std::optional<uint64_t> deadline_ns);

	int fd_;
	devices::Serial &serial_;
	EventLoop &loop_;
	Hooks hooks_;
	const Logger &log_;
	EventFd input_wanted_;
	TimerFd timer_;  // the line's next batch, or the character timeout
	std::optional<uint64_t> timer_deadline_;
	InputPacer pacer_{devices::Serial::kFifoSize};
	std::optional<uint64_t> character_timeout_at_;
	std::optional<uint64_t> batch_delivered_at_;  // until the guest emptied the FIFO
	uint64_t rest_until_ns_ = 0;
	std::optional<RawTerminal> raw_;
	EscapeDetector escape_;
	std::deque<uint8_t> pending_;  // read, escapes taken out, not yet in the UART
	bool open_ = true;
	bool watched_ = false;
};

}  // namespace kairos::vmm
