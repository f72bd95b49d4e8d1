// IoUring: an owned io_uring (liburing) instance. The ring lives on the
// heap, so the owner can move while the kernel's mappings stay put; the
// destructor unmaps it (io_uring_queue_exit). The event loop and the timer
// service each drive one from their own thread.
#pragma once

#include <liburing.h>

#include <memory>

#include "base/result.h"

namespace kairos {

class IoUring {
public:
	// io_uring_queue_init(entries). `purpose` names it in the error.
	static Result<IoUring> create(unsigned entries, const char *purpose);

	io_uring *get() const { return ring_.get(); }

private:
	struct Exit {
		void operator()(io_uring *ring) const;
	};
	explicit IoUring(std::unique_ptr<io_uring, Exit> ring) : ring_(std::move(ring)) {}
	std::unique_ptr<io_uring, Exit> ring_;
};

}  // namespace kairos
