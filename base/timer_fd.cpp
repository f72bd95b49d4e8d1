#include "base/timer_fd.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"

namespace kairos {

Result<TimerFd> TimerFd::create(Mode mode, const char *purpose)
{
	int flags = TFD_CLOEXEC | (mode == Mode::NonBlocking ? TFD_NONBLOCK : 0);
	UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, flags));
	if (!fd)
		return errno_error(fmt::format("timerfd_create(CLOCK_MONOTONIC) for {}", purpose));
	return TimerFd(std::move(fd), purpose);
}

Status TimerFd::arm_periodic(uint64_t period_ns)
{
	if (period_ns == 0)
		return make_error("timerfd for {}: a period of 0 ns", purpose_);
	itimerspec spec{};
	spec.it_interval = ns_to_timespec(period_ns);
	spec.it_value = spec.it_interval;
	if (timerfd_settime(fd_.get(), 0, &spec, nullptr) != 0)
		return errno_error(fmt::format("timerfd_settime every {} ns for {}", period_ns, purpose_));
	return {};
}

Status TimerFd::arm_at(std::optional<uint64_t> deadline_ns)
{
	itimerspec spec{};
	// it_value of zero disarms; an absolute deadline of 0 would too, so a
	// past deadline becomes 1 ns, long gone, which expires at once.
	if (deadline_ns)
		spec.it_value = ns_to_timespec(*deadline_ns == 0 ? 1 : *deadline_ns);
	if (timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0)
		return errno_error(fmt::format("timerfd_settime at {} ns for {}", deadline_ns.value_or(0), purpose_));
	return {};
}

uint64_t TimerFd::consume() const
{
	uint64_t expirations = 0;
	if (::read(fd_.get(), &expirations, sizeof(expirations)) != static_cast<ssize_t>(sizeof(expirations)))
		return 0;
	return expirations;
}

}  // namespace kairos
