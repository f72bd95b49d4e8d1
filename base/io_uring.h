// IoUring: an owned io_uring (liburing) instance. The ring lives on the
// heap, so the owner can move while the kernel's mappings stay put; the
// destructor unmaps it (io_uring_queue_exit). The event loop, the timer
// service and each virtio device drive one from their own thread.
//
// A ring is restricted from birth to the operations its owner submits
// (io_uring_register_restrictions(3), kernel 5.10): an SQE bypasses the
// thread's seccomp filter, so without this any io_uring_enter could open,
// read or write any file; with it, another opcode, any SQE flag, and
// every later io_uring_register fail with EACCES.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <initializer_list>
#include <memory>

#include "base/result.h"

namespace kairos {

class IoUring {
public:
	// io_uring_queue_init(entries) with the ring disabled, restricted to
	// the IORING_OP_* opcodes `allowed_ops`, then enabled. `purpose` names
	// it in the error ("io_uring restrictions for the event loop: ...").
	static Result<IoUring> create(unsigned entries, const char *purpose,
				      std::initializer_list<uint8_t> allowed_ops);

	io_uring *get() const { return ring_.get(); }

	// The next free submission entry; when the queue is full, what is
	// queued goes to the kernel first. nullptr if it is still full.
	io_uring_sqe *next_sqe() const;
	// Queues a one-shot IORING_OP_POLL_ADD of `events` (POLLIN...) on fd,
	// its completion carrying `tag` as user_data; false when no entry
	// could be had.
	bool poll_add(int fd, unsigned events, uint64_t tag) const;
	// Takes every completion there is, without waiting:
	// on_completion(tag, result) for each, tag being its user_data.
	template <typename OnCompletion>
	void reap(OnCompletion &&on_completion) const
	{
		io_uring_cqe *cqe;
		while (io_uring_peek_cqe(ring_.get(), &cqe) == 0) {
			const uint64_t tag = io_uring_cqe_get_data64(cqe);
			const int result = cqe->res;
			io_uring_cqe_seen(ring_.get(), cqe);
			on_completion(tag, result);
		}
	}

private:
	struct Exit {
		void operator()(io_uring *ring) const;
	};
	explicit IoUring(std::unique_ptr<io_uring, Exit> ring) : ring_(std::move(ring)) {}
	std::unique_ptr<io_uring, Exit> ring_;
};

}  // namespace kairos
