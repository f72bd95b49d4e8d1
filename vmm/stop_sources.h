// Stop requests that arrive as events on the main loop rather than from a
// device: host signals, and kairos.ko's panic notice after its grace
// period. Both end in Shutdown::request, the one shutdown path.
#pragma once

#include <cstdint>
#include <memory>

#include "base/result.h"
#include "base/timer_fd.h"
#include "base/unique_fd.h"
#include "vmm/event_loop.h"
#include "vmm/shutdown.h"

namespace kairos::vmm {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and every thread
// it starts later. Called first thing in `kairos run`, so that one arriving
// during setup waits for the loop instead of killing the process.
Status block_stop_signals();

// SIGINT, SIGTERM and SIGHUP as readable data (a signalfd), blocked in
// every thread created after watch(): each stops the VM with its name.
class StopSignals {
public:
	// `loop` and `shutdown` must outlive the returned object's watch.
	static Result<StopSignals> watch(EventLoop &loop, Shutdown &shutdown);

private:
	explicit StopSignals(UniqueFd fd) : fd_(std::move(fd)) {}
	UniqueFd fd_;
};

// kairos.ko reports a guest panic before the kernel prints the rest of its
// report (and panic=-1 then resets at once): the VM stops `grace_ns` after
// the notice, or at the reset, whichever comes first.
class PanicNotice {
public:
	static Result<PanicNotice> watch(EventLoop &loop, Shutdown &shutdown, uint64_t grace_ns);
	// From any thread (a vCPU's, for kairos.ko's command). If the timer
	// cannot be armed the VM stops at once, saying why.
	void notice();

private:
	PanicNotice(std::unique_ptr<TimerFd> timer, Shutdown &shutdown, uint64_t grace_ns)
		: timer_(std::move(timer)), shutdown_(&shutdown), grace_ns_(grace_ns)
	{
	}
	std::unique_ptr<TimerFd> timer_;
	Shutdown *shutdown_;
	uint64_t grace_ns_;
};

}  // namespace kairos::vmm
