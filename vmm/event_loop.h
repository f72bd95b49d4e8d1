// The event loop (io_uring): watches file descriptors on one thread and calls
// a handler each time one becomes readable. Used for serial input, signals
// and the shutdown wake-up.
#pragma once

#include <liburing.h>

#include <functional>
#include <map>
#include <memory>

#include "vmm/base/result.h"

namespace kairos::vmm {

class EventLoop {
public:
	using Handler = std::function<void()>;

	static Result<std::unique_ptr<EventLoop>> create();
	~EventLoop();
	EventLoop(const EventLoop &) = delete;
	EventLoop &operator=(const EventLoop &) = delete;

	// Calls handler whenever fd is readable (or hung up) until unwatch(fd).
	Status watch(int fd, Handler handler);
	// Safe to call from inside a handler.
	void unwatch(int fd);
	// Waits up to timeout_ms for events and runs their handlers.
	Status run_once(int timeout_ms);

private:
	EventLoop() = default;
	Status arm(int fd);

	io_uring ring_{};
	bool ring_ready_ = false;
	struct Watch {
		Handler handler;
		bool armed = false;
	};
	std::map<int, Watch> watches_;
};

} // namespace kairos::vmm
