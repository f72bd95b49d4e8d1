#include "vmm/stop_sources.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>

#include "base/clock.h"
#include "base/error.h"

namespace kairos::vmm {

namespace {

sigset_t stop_signal_set()
{
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	return signals;
}

}  // namespace

Status block_stop_signals()
{
	sigset_t signals = stop_signal_set();
	// Before any other thread starts: they inherit the mask. Unblocked,
	// the signals would kill the process instead of stopping it cleanly.
	if (int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0)
		return errno_error("pthread_sigmask blocking SIGINT/SIGTERM/SIGHUP", error);
	return {};
}

Result<StopSignals> StopSignals::watch(EventLoop &loop, Shutdown &shutdown)
{
	KAIROS_TRY(block_stop_signals());
	sigset_t signals = stop_signal_set();
	// A signal that came during setup is pending: the first read gets it.
	UniqueFd fd(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
	if (!fd)
		return errno_error("signalfd for SIGINT/SIGTERM/SIGHUP");
	int raw = fd.get();
	KAIROS_TRY(loop.watch(raw, [raw, &shutdown] {
		signalfd_siginfo info{};
		if (::read(raw, &info, sizeof(info)) == sizeof(info))
			shutdown.request(StopReason::Signal,
					 fmt::format("received {}", sigabbrev_np(static_cast<int>(info.ssi_signo))),
					 static_cast<int>(info.ssi_signo));
	}));
	return StopSignals(std::move(fd));
}

Result<PanicNotice> PanicNotice::watch(EventLoop &loop, Shutdown &shutdown, uint64_t grace_ns)
{
	KAIROS_TRY_ASSIGN(timer, TimerFd::create(TimerFd::Mode::NonBlocking, "the guest's panic notice"));
	PanicNotice notice(std::make_unique<TimerFd>(std::move(timer)), shutdown, grace_ns);
	// The timer lives on the heap: the handler's pointer survives moves of
	// the notice.
	TimerFd *expiry = notice.timer_.get();
	KAIROS_TRY(loop.watch(expiry->fd(), [expiry, &shutdown] {
		if (expiry->consume() > 0)
			shutdown.request(StopReason::GuestPanic, "the guest kernel panicked (kairos.ko notice)");
	}));
	return notice;
}

void PanicNotice::notice()
{
	auto armed = timer_->arm_at(monotonic_now_ns() + grace_ns_);
	if (!armed)
		shutdown_->request(
			StopReason::GuestPanic,
			fmt::format("the guest kernel panicked (kairos.ko notice; {})", armed.error().message));
}

}  // namespace kairos::vmm
