// HostClock: the line (TSC -> system time) the guest's pvclock records
// publish, kept close to the host's CLOCK_MONOTONIC without ever stepping
// back.
//
// System time is the host's CLOCK_MONOTONIC (DESIGN.md 4). NTP slews that
// clock but not the TSC, so each refresh re-measures the rate (over at
// least 50 ms of readings, however often it is called) and starts a new
// line where the published one stands at that TSC, never at the fresh
// reading: a jump there would step guest time back whenever the old line
// ran ahead. The gap to CLOCK_MONOTONIC is closed by slewing the new
// line's rate (at most 500 ppm, as adjtimex(2) slews), or, if the guest is
// far behind, by a step forward. As Linux kvmclock's master clock and Xen
// keep the guest's clock monotonic across updates.
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

	// Takes a reading and starts the next line, unless the current one is
	// under a millisecond old. Returns the line's anchor: a TSC value and
	// the system time (ns) there; scale() is its rate. Guest time goes on:
	// from the anchor for kPublishWindowNs of TSC, the new line is never
	// below the old one, so a guest that read the old record up to that
	// long after the host's reading never sees the new one go back.
	ClockReading refresh();

	TimeScale scale() const { return scale_; }
	// monotonic_ns here is system time on the published line, within the
	// slew bound of CLOCK_MONOTONIC.
	ClockReading anchor() const { return anchor_; }

	// How long after its reading the host may take to publish a record
	// whose rate dropped and still keep the promise of refresh().
	static constexpr uint64_t kPublishWindowNs = 1'000'000;

	// A reading with the TSC read on both sides of clock_gettime, keeping
	// the tightest of a few tries (so a preemption in between is dropped).
	static ClockReading read_now();

private:
	uint64_t ticks_in(uint64_t nanoseconds) const;
	void measure_rate(ClockReading now);
	TimeScale slewed_scale(int64_t ahead_ns, uint64_t horizon_ns) const;
	uint64_t continuity_allowance_ns(TimeScale next) const;

	Reader reader_;
	uint64_t tsc_hz_;
	ClockReading anchor_{};  // the published line's anchor
	TimeScale scale_{};      // and its rate
	// The rate: rate_ns_ of CLOCK_MONOTONIC in rate_ticks_ of TSC, measured
	// from rate_start_, a raw reading, to a later one.
	ClockReading rate_start_{};
	uint64_t rate_ticks_;
	uint64_t rate_ns_ = 1'000'000'000;
};

// Run delay of a host thread in ns: the second field of
// /proc/self/task/TID/schedstat (time runnable but not running). Returns 0
// when the kernel has no schedstats.
uint64_t thread_run_delay_ns(uint64_t thread_id);
// How often that thread was preempted (proc(5): nonvoluntary_ctxt_switches
// in /proc/self/task/TID/status); 0 when it cannot be read.
uint64_t thread_involuntary_switches(uint64_t thread_id);

}  // namespace kairos::pvclock
