#include "pvclock/time_scale.h"

namespace kairos::pvclock {

TimeScale time_scale_for_interval(uint64_t ticks, uint64_t nanoseconds)
{
	return time_scale_for_ratio(ticks, nanoseconds);
}

TimeScale time_scale_for_ratio(unsigned __int128 ticks, unsigned __int128 nanoseconds)
{
	// We want mul/2^32 * 2^shift == nanoseconds/ticks with mul < 2^32.
	// Shift the two sides until the ratio lies in [0.5, 1), after Linux's
	// kvm_get_time_scale(), then take 32 bits of the quotient.
	TimeScale scale;
	if (ticks == 0 || nanoseconds == 0)
		return scale;
	unsigned __int128 numerator = nanoseconds;
	unsigned __int128 denominator = ticks;
	// Both below 2^90: the normalised numerator shifted by 32 fits 128 bits.
	int shift = 0;
	while (numerator >= denominator) {
		denominator <<= 1;
		++shift;
	}
	while (numerator * 2 < denominator) {
		numerator <<= 1;
		--shift;
	}
	scale.mul = static_cast<uint32_t>((numerator << 32) / denominator);
	scale.shift = static_cast<int8_t>(shift);
	return scale;
}

TimeScale time_scale_for(uint64_t tsc_hz)
{
	return time_scale_for_interval(tsc_hz, 1'000'000'000ULL);
}

uint64_t scale_delta(uint64_t delta, TimeScale scale)
{
	if (scale.shift < 0)
		delta >>= -scale.shift;
	else
		delta <<= scale.shift;
	return static_cast<uint64_t>((static_cast<unsigned __int128>(delta) * scale.mul) >> 32);
}

}  // namespace kairos::pvclock
