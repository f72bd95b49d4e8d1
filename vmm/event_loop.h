// The event loop (io_uring): watches file descriptors on one thread and calls
// a handler each time one becomes readable (or writable, for console output
// that would block). Used for serial input and output, signals and the
// shutdown wake-up.
#pragma once

#include <functional>
#include <map>
#include <memory>

#include "base/io_uring.h"
#include "base/result.h"

namespace kairos::vmm {

class EventLoop {
public:
	using Handler = std::function<void()>;

	static Result<std::unique_ptr<EventLoop>> create();
	EventLoop(const EventLoop &) = delete;
	EventLoop &operator=(const EventLoop &) = delete;

	// Calls handler whenever fd is readable (or hung up) until unwatch(fd).
	Status watch(int fd, Handler handler);
	// Calls handler whenever fd is writable (or failed) until unwatch(fd).
	// One watch per fd: this replaces a readable watch of the same fd.
	Status watch_writable(int fd, Handler handler);
	// Safe to call from inside a handler.
	void unwatch(int fd);
	// Waits up to timeout_ms (< 0: until an event) for events and runs
	// their handlers.
	Status run_once(int timeout_ms);
	// Times run_once returned, with events or not (--stats).
	uint64_t wakeups() const { return wakeups_; }
	// Times it returned because timeout_ms ran out with no event: a
	// periodic tick would show here (--stats; Machine::run waits with none).
	uint64_t timeouts() const { return timeouts_; }

private:
	explicit EventLoop(IoUring ring) : ring_(std::move(ring)) {}
	Status arm(int fd);
	Status watch_for(int fd, short events, Handler handler);

	IoUring ring_;
	struct Watch {
		Handler handler;
		short events = 0;  // POLLIN or POLLOUT
		bool armed = false;
	};
	std::map<int, Watch> watches_;
	uint64_t wakeups_ = 0;
	uint64_t timeouts_ = 0;
};

}  // namespace kairos::vmm
