// pvclock arithmetic: converting TSC ticks to nanoseconds with a 32-bit
// multiplier and a power-of-two shift, exactly as the guest does it
// (Linux pvclock_scale_delta; Xen's vcpu_time_info).
#pragma once

#include <cstdint>

namespace kairos::pvclock {

struct TimeScale {
	uint32_t mul = 0;
	int8_t shift = 0;
};

// The scale that converts ticks of a tsc_hz clock to nanoseconds: mul is
// normalised into [2^31, 2^32) for the most precision a 32-bit field holds.
TimeScale time_scale_for(uint64_t tsc_hz);
// The scale for an observed rate: `nanoseconds` passed during `ticks`.
TimeScale time_scale_for_interval(uint64_t ticks, uint64_t nanoseconds);
// The same for a ratio too fine for 64 bits (a rate slewed by parts per
// billion); both terms below 2^90.
TimeScale time_scale_for_ratio(unsigned __int128 ticks, unsigned __int128 nanoseconds);

// The guest's conversion: ((shift < 0 ? d >> -shift : d << shift) * mul) >> 32.
uint64_t scale_delta(uint64_t delta, TimeScale scale);

}  // namespace kairos::pvclock
