// TimerFd: an owned timerfd(2) on CLOCK_MONOTONIC, periodic or armed at an
// absolute deadline (after crosvm's base::Timer).
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"
#include "base/unique_fd.h"

namespace kairos {

class TimerFd {
public:
	enum class Mode { Blocking, NonBlocking };

	// timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC [| TFD_NONBLOCK]),
	// disarmed. `purpose` names it in errors.
	static Result<TimerFd> create(Mode mode, const char *purpose);

	int fd() const { return fd_.get(); }
	// Expires every period_ns (> 0), the first time one period from now.
	Status arm_periodic(uint64_t period_ns);
	// Expires once at deadline_ns of CLOCK_MONOTONIC (TFD_TIMER_ABSTIME; a
	// deadline in the past expires at once); nullopt disarms it.
	Status arm_at(std::optional<uint64_t> deadline_ns);
	// Reads the expiry count and resets it; 0 if none (non-blocking mode).
	uint64_t consume() const;

private:
	TimerFd(UniqueFd fd, const char *purpose) : fd_(std::move(fd)), purpose_(purpose) {}
	UniqueFd fd_;
	const char *purpose_;
};

}  // namespace kairos
