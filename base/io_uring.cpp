#include "base/io_uring.h"

#include <vector>

#include "base/error.h"

namespace kairos {

void IoUring::Exit::operator()(io_uring *ring) const
{
	io_uring_queue_exit(ring);
	delete ring;
}

Result<IoUring> IoUring::create(unsigned entries, const char *purpose, std::initializer_list<uint8_t> allowed_ops)
{
	auto ring = std::make_unique<io_uring>();
	int error = io_uring_queue_init(entries, ring.get(), IORING_SETUP_R_DISABLED);
	if (error < 0)
		return errno_error(fmt::format("io_uring_queue_init for {}", purpose), -error);
	IoUring owned(std::unique_ptr<io_uring, Exit>(ring.release()));
	// Only SQE_OP entries: no SQE flags and no register opcode are allowed.
	std::vector<io_uring_restriction> restrictions(allowed_ops.size());
	size_t index = 0;
	for (uint8_t op : allowed_ops) {
		restrictions[index].opcode = IORING_RESTRICTION_SQE_OP;
		restrictions[index].sqe_op = op;
		++index;
	}
	// Through io_uring_register itself: Debian's liburing 2.3 exports
	// neither io_uring_register_restrictions nor io_uring_enable_rings
	// from its shared library (only its static one has them).
	const auto ring_fd = static_cast<unsigned>(owned.get()->ring_fd);
	error = io_uring_register(ring_fd, IORING_REGISTER_RESTRICTIONS, restrictions.data(),
				  static_cast<unsigned>(restrictions.size()));
	if (error < 0)
		return errno_error(fmt::format("io_uring restrictions for {}", purpose), -error);
	error = io_uring_register(ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
	if (error < 0)
		return errno_error(fmt::format("io_uring_enable_rings for {}", purpose), -error);
	return owned;
}

io_uring_sqe *IoUring::next_sqe() const
{
	io_uring_sqe *sqe = io_uring_get_sqe(ring_.get());
	if (!sqe) {
		io_uring_submit(ring_.get());
		sqe = io_uring_get_sqe(ring_.get());
	}
	return sqe;
}

bool IoUring::poll_add(int fd, unsigned events, uint64_t tag) const
{
	io_uring_sqe *sqe = next_sqe();
	if (!sqe)
		return false;
	io_uring_prep_poll_add(sqe, fd, events);
	io_uring_sqe_set_data64(sqe, tag);
	return true;
}

}  // namespace kairos
