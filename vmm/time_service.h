// TimeService: publishes host time into the guest's shared-info page, for
// every vCPU, on a refresh timer and on demand (before a virtual timer
// event, as Xen refreshes time before its timer interrupt).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "pvclock/host_clock.h"
#include "pvclock/shared_info.h"
#include "base/pi_mutex.h"

namespace kairos::vmm {

class Vcpu;

class TimeService {
public:
	// tsc_offsets[i]: guest TSC minus host TSC on vCPU i.
	TimeService(uint64_t tsc_hz, std::vector<int64_t> tsc_offsets);

	// Stolen time comes from these threads' run delay; set before start.
	void set_vcpus(std::vector<const Vcpu *> vcpus);

	// The guest registered (or dropped) its page; attach publishes at once.
	void attach(pvclock::SharedInfo *page);
	void detach();

	// Thread-safe; do nothing while no page is registered.
	// publish(): time, wall clock and stolen time (the periodic refresh).
	void publish();
	// Time only: the fast path before a timer event, with no /proc reads.
	void publish_time();
	uint64_t publishes() const { return publishes_.load(); }
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
	pvclock::HostClock clock_;
	std::vector<int64_t> tsc_offsets_;
	std::vector<const Vcpu *> vcpus_;
	pvclock::SharedInfo *page_ = nullptr;
	uint8_t flags_;
	std::atomic<uint64_t> publishes_{0};
	std::atomic<uint64_t> last_system_time_{0};
};

} // namespace kairos::vmm
