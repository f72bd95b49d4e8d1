// Reading host clocks in nanoseconds: the one conversion from timespec, for
// CLOCK_MONOTONIC (system time, DESIGN.md 4), CLOCK_REALTIME and the
// per-thread CPU clocks (pthread_getcpuclockid).
#pragma once

#include <time.h>

#include <cstdint>

#include "base/result.h"

namespace kairos {

inline constexpr uint64_t kNsPerSecond = 1'000'000'000ULL;

// A timespec as nanoseconds; negative fields count as zero.
uint64_t timespec_to_ns(const timespec &value);
// Nanoseconds as a timespec (for timerfd_settime and the like).
timespec ns_to_timespec(uint64_t ns);

// clock_gettime(clock) in ns. For clocks that cannot fail (the system
// clocks this process always has); returns 0 if the kernel refuses.
uint64_t clock_now_ns(clockid_t clock);
// CLOCK_MONOTONIC in ns: Kairos's system time.
inline uint64_t monotonic_now_ns()
{
	return clock_now_ns(CLOCK_MONOTONIC);
}
// clock_gettime(clock) in ns, or why it failed (a thread's CPU clock fails
// with EINVAL once that thread has exited).
Result<uint64_t> clock_read_ns(clockid_t clock);

}  // namespace kairos
