#include "base/event_fd.h"

#include <sys/eventfd.h>

#include "base/error.h"

namespace kairos {

Result<EventFd> EventFd::create(Mode mode, const char *purpose)
{
	int flags = EFD_CLOEXEC | (mode == Mode::NonBlocking ? EFD_NONBLOCK : 0);
	UniqueFd fd(eventfd(0, flags));
	if (!fd)
		return errno_error(fmt::format("eventfd for {}", purpose));
	return EventFd(std::move(fd));
}

void EventFd::signal() const
{
	// Fails only with EAGAIN at a counter of 2^64-2: a wake-up is pending.
	eventfd_write(fd_.get(), 1);
}

uint64_t EventFd::consume() const
{
	eventfd_t value = 0;
	if (eventfd_read(fd_.get(), &value) != 0)
		return 0;
	return value;
}

}  // namespace kairos
