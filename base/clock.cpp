#include "base/clock.h"

#include "base/error.h"

namespace kairos {

uint64_t timespec_to_ns(const timespec &value)
{
	uint64_t seconds = value.tv_sec > 0 ? static_cast<uint64_t>(value.tv_sec) : 0;
	uint64_t nanoseconds = value.tv_nsec > 0 ? static_cast<uint64_t>(value.tv_nsec) : 0;
	return seconds * kNsPerSecond + nanoseconds;
}

timespec ns_to_timespec(uint64_t ns)
{
	timespec value{};
	value.tv_sec = static_cast<time_t>(ns / kNsPerSecond);
	value.tv_nsec = static_cast<long>(ns % kNsPerSecond);
	return value;
}

uint64_t clock_now_ns(clockid_t clock)
{
	timespec now{};
	if (clock_gettime(clock, &now) != 0)
		return 0;
	return timespec_to_ns(now);
}

Result<uint64_t> clock_read_ns(clockid_t clock)
{
	timespec now{};
	if (clock_gettime(clock, &now) != 0)
		return errno_error(fmt::format("clock_gettime(clock {})", static_cast<int>(clock)));
	return timespec_to_ns(now);
}

}  // namespace kairos
