// TimeService: publishes host time into the guest's shared-info page, for
// every vCPU, on a refresh timer and on demand (before a virtual timer
// event, as Xen refreshes time before its timer interrupt).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "base/pi_mutex.h"
#include "pvclock/host_clock.h"
#include "pvclock/shared_info.h"

namespace kairos::pvclock {

class TimeService {
public:
	// tsc_offsets[i]: guest TSC minus host TSC on vCPU i.
	TimeService(uint64_t tsc_hz, std::vector<int64_t> tsc_offsets);

	// Host thread id of vCPU i, 0 while its thread has not started.
	using ThreadIdOf = std::function<uint64_t(uint32_t vcpu)>;
	// Stolen time comes from the vCPU threads' run delay; set before they
	// start.
	void set_vcpu_threads(ThreadIdOf thread_id_of);

	// The guest registered (or dropped) its page; attach publishes at once.
	void attach(SharedInfo *page);
	void detach();

	// Thread-safe; do nothing while no page is registered.
	// publish(): time, wall clock and stolen time (the periodic refresh).
	void publish();
	// Time only: the fast path before a timer event, with no /proc reads.
	void publish_time();
	uint64_t publishes() const { return publishes_.load(); }
	// A pause of the whole VM (kairos ctl pause): every vCPU was kept
	// from running for `ns`, which the guest sees as stolen time from the
	// next publish() on, on top of the threads' run delay.
	void add_stolen_ns(uint64_t ns) { paused_ns_.fetch_add(ns); }
	// The last system time published (0 if none).
	uint64_t last_system_time() const { return last_system_time_.load(); }

private:
	// run_delays: per vCPU, read before the lock is taken (empty: time only).
	void publish_locked(const std::vector<uint64_t> &run_delays);
	std::vector<uint64_t> read_run_delays() const;

	// The timer thread (possibly real-time) publishes under this lock too:
	// nothing slow is done while holding it (the /proc reads for stolen
	// time happen before), and it inherits priority, so a normal thread
	// preempted while holding it cannot stall the timer thread.
	mutable PiMutex mutex_;
	HostClock clock_;
	std::vector<int64_t> tsc_offsets_;
	ThreadIdOf thread_id_of_;
	SharedInfo *page_ = nullptr;
	uint8_t flags_;
	std::atomic<uint64_t> publishes_{0};
	std::atomic<uint64_t> paused_ns_{0};
	std::atomic<uint64_t> last_system_time_{0};
};

}  // namespace kairos::pvclock
