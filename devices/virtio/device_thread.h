// DeviceThread: the life of a virtio device's own thread, the same for every
// device (issue 10: queues are served on a device thread, never on a vCPU
// thread). It starts confined (the caller's seccomp filter) and reports
// whether that worked before start() returns, runs the device's loop until
// stop() asks it to end, and lets no exception out (STYLE.md: no exceptions
// across thread boundaries).
//
// The device keeps its own control state (an activation handed over, reset
// requests) under this object's mutex and condition variable, so one lock
// orders both: a vCPU thread waiting for a reset also wakes when the thread
// ends (running() turns false).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/event_fd.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

class DeviceThread {
public:
	// What the thread runs, in order, once confined.
	struct Work {
		// The device's loop; returns once stop_requested() is seen.
		std::function<void()> serve;
		// serve threw (out of memory for a chain's buffers): the device
		// tells its driver (DEVICE_NEEDS_RESET) and counts an error.
		std::function<void()> lost;
		// After serve, however it ended, before running() turns false:
		// let go of the queues (and whatever else touches guest memory).
		std::function<void()> finish;
	};

	// name is the device's, for messages.
	explicit DeviceThread(std::string name) : name_(std::move(name)) {}
	// The owner calls stop() first; joining here only guards a mistake.
	~DeviceThread();
	DeviceThread(const DeviceThread &) = delete;
	DeviceThread &operator=(const DeviceThread &) = delete;

	// Starts the thread. It calls confine() (may be empty), then work.
	// Returns confine's error or the thread's creation error, in which
	// case no thread is left; "already started" when called twice.
	Status start(std::function<Status()> confine, Work work);
	// Asks serve to end (stop_requested() turns true), signals wake (the
	// device's control eventfd, which serve polls) and joins.
	void stop(const EventFd &wake);

	// The lock of the device's control state, and its condition variable,
	// notified whenever running() changes.
	std::mutex &mutex() { return mutex_; }
	std::condition_variable &changed() { return changed_; }
	// Require mutex(). running: confined and not yet past finish.
	bool running() const { return running_; }
	bool stop_requested() const { return stop_requested_; }

	// A device reset (virtio 1.2 section 2.1.2), from the transport's
	// thread: done with the queues before it returns. Under mutex(),
	// drop_pending() first drops what the thread has not taken yet (an
	// activation); then, if the thread runs, this waits until it called
	// reset_done() for this request or ended.
	void request_reset(const EventFd &wake, const std::function<void()> &drop_pending);
	// The thread's side, under mutex(): the requests so far (unequal to
	// the last reset_done's: a reset waits), and the acknowledgement.
	uint64_t reset_requests() const { return reset_requests_; }
	bool reset_pending() const { return reset_requests_ != resets_done_; }
	void reset_done(uint64_t requests);

private:
	void run(const std::function<Status()> &confine, const Work &work);

	const std::string name_;
	std::mutex mutex_;
	std::condition_variable changed_;
	bool stop_requested_ = false;
	bool started_ = false;  // run() reported confine's result
	bool running_ = false;
	uint64_t reset_requests_ = 0;
	uint64_t resets_done_ = 0;
	Status start_status_;
	std::thread thread_;
};

// The counters behind DeviceStats, bumped by the device's thread and read by
// --stats from another.
struct DeviceCounters {
	std::atomic<uint64_t> requests{0};
	std::atomic<uint64_t> bytes_read{0};
	std::atomic<uint64_t> bytes_written{0};
	std::atomic<uint64_t> errors{0};
	std::atomic<uint64_t> notifications{0};
	std::atomic<uint64_t> interrupts{0};
	std::atomic<uint64_t> interrupts_suppressed{0};

	static void add(std::atomic<uint64_t> &counter, uint64_t amount = 1)
	{
		counter.fetch_add(amount, std::memory_order_relaxed);
	}
	DeviceStats snapshot() const;
};

}  // namespace kairos::devices::virtio
