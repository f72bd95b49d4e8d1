#include "base/io_uring.h"

#include "base/error.h"

namespace kairos {

void IoUring::Exit::operator()(io_uring *ring) const
{
	io_uring_queue_exit(ring);
	delete ring;
}

Result<IoUring> IoUring::create(unsigned entries, const char *purpose)
{
	auto ring = std::make_unique<io_uring>();
	int error = io_uring_queue_init(entries, ring.get(), 0);
	if (error < 0)
		return errno_error(fmt::format("io_uring_queue_init for {}", purpose), -error);
	return IoUring(std::unique_ptr<io_uring, Exit>(ring.release()));
}

}  // namespace kairos
