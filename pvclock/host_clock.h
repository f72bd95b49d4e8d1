// HostClock: pairs of (host TSC, CLOCK_MONOTONIC) readings and the rate
// between them, from which the guest's pvclock records are made.
//
// System time is the host's CLOCK_MONOTONIC (DESIGN.md 4). NTP slews that
// clock but not the TSC, so the rate is re-measured at every refresh over
// the interval since the last one; the guest extrapolates with it until the
// next, and each refresh re-anchors system_time on a fresh reading.
#pragma once

#include <time.h>

#include <cstdint>
#include <functional>

#include "pvclock/time_scale.h"

namespace kairos::pvclock {

struct ClockReading {
	uint64_t tsc;           // host TSC
	uint64_t monotonic_ns;  // CLOCK_MONOTONIC at (about) the same instant
};

class HostClock {
public:
	using Reader = std::function<ClockReading()>;

	// tsc_hz: the nominal rate (KVM_GET_TSC_KHZ), used until a refresh
	// has measured one. reader: defaults to rdtsc + clock_gettime.
	explicit HostClock(uint64_t tsc_hz, Reader reader = {});

	// Takes a reading; when it is far enough from the previous anchor,
	// re-measures the rate from the two. Returns the new anchor.
	ClockReading refresh();

	TimeScale scale() const { return scale_; }
	ClockReading anchor() const { return anchor_; }

	// A reading with the TSC read on both sides of clock_gettime, keeping
	// the tightest of a few tries (so a preemption in between is dropped).
	static ClockReading read_now();

private:
	Reader reader_;
	ClockReading anchor_{};
	TimeScale scale_{};
};

// Run delay of a host thread in ns: the second field of
// /proc/self/task/TID/schedstat (time runnable but not running). Returns 0
// when the kernel has no schedstats.
uint64_t thread_run_delay_ns(uint64_t thread_id);
// How often that thread was preempted (proc(5): nonvoluntary_ctxt_switches
// in /proc/self/task/TID/status); 0 when it cannot be read.
uint64_t thread_involuntary_switches(uint64_t thread_id);

}  // namespace kairos::pvclock
