#include "vmm/shutdown.h"

#include "base/error.h"

namespace kairos::vmm {

int exit_code_for(StopReason reason, int signal_number)
{
	switch (reason) {
	case StopReason::PowerOff:
	case StopReason::Reset:
	case StopReason::UserQuit:
		return 0;
	case StopReason::HostError:
		return 1;
	case StopReason::GuestPanic:
		return 3;
	case StopReason::TripleFault:
		return 4;
	case StopReason::GuestError:
		return 5;
	case StopReason::Signal:
		return 128 + signal_number;
	}
	return 1;
}

const char *reason_name(StopReason reason)
{
	switch (reason) {
	case StopReason::PowerOff:
		return "power-off";
	case StopReason::Reset:
		return "reset";
	case StopReason::GuestPanic:
		return "guest-panic";
	case StopReason::TripleFault:
		return "triple-fault";
	case StopReason::GuestError:
		return "guest-error";
	case StopReason::HostError:
		return "host-error";
	case StopReason::Signal:
		return "signal";
	case StopReason::UserQuit:
		return "user-quit";
	}
	return "unknown";
}

const char *describe(StopReason reason)
{
	switch (reason) {
	case StopReason::PowerOff:
		return "guest powered off";
	case StopReason::Reset:
		return "guest reset";
	case StopReason::GuestPanic:
		return "guest kernel panic";
	case StopReason::TripleFault:
		return "guest triple fault";
	case StopReason::GuestError:
		return "guest could not run";
	case StopReason::HostError:
		return "host error";
	case StopReason::Signal:
		return "stopped by signal";
	case StopReason::UserQuit:
		return "quit by the user";
	}
	return "unknown";
}

Result<Shutdown> Shutdown::create()
{
	KAIROS_TRY_ASSIGN(wake, EventFd::create(EventFd::Mode::NonBlocking, "shutdown"));
	return Shutdown(std::move(wake));
}

Shutdown::Shutdown(Shutdown &&other) noexcept : wake_(std::move(other.wake_)) {}

void Shutdown::request(StopReason reason, std::string detail, int signal_number)
{
	{
		std::lock_guard lock(mutex_);
		if (requested_.load(std::memory_order_relaxed))
			return;
		reason_ = reason;
		detail_ = std::move(detail);
		signal_number_ = signal_number;
		requested_.store(true, std::memory_order_release);
	}
	wake_.signal();
}

StopReason Shutdown::reason() const
{
	std::lock_guard lock(mutex_);
	return reason_;
}

std::string Shutdown::detail() const
{
	std::lock_guard lock(mutex_);
	return detail_;
}

int Shutdown::signal_number() const
{
	std::lock_guard lock(mutex_);
	return signal_number_;
}

}  // namespace kairos::vmm
