// EventFd: an owned eventfd(2) used as a wake-up counter (after crosvm's
// base::Event and Firecracker's vmm_sys_util::eventfd). Writers signal it
// from any thread; its reader (a poll, an io_uring read, KVM's ioeventfd or
// irqfd) consumes the count.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace kairos {

class EventFd {
public:
	enum class Mode { Blocking, NonBlocking };

	// eventfd(0, EFD_CLOEXEC [| EFD_NONBLOCK]). `purpose` names it in the
	// error ("eventfd for <purpose>: <strerror>").
	static Result<EventFd> create(Mode mode, const char *purpose);

	int fd() const { return fd_.get(); }
	// Adds 1. Never blocks in practice and never fails but for a counter at
	// its maximum, when a wake-up is already pending: nothing is lost.
	void signal() const;
	// Reads and resets the counter; 0 if it was not signalled (non-blocking
	// mode) or the read failed.
	uint64_t consume() const;

private:
	explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
	UniqueFd fd_;
};

}  // namespace kairos
