#include "vmm/event_loop.h"

#include <poll.h>

#include <cstring>

#include "base/error.h"

namespace kairos::vmm {

Result<std::unique_ptr<EventLoop>> EventLoop::create()
{
	KAIROS_TRY_ASSIGN(ring, IoUring::create(32, "the event loop",
						// TIMEOUT: liburing's wait with a timeout on a kernel
						// without IORING_FEAT_EXT_ARG (before 5.11).
						{IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE, IORING_OP_TIMEOUT}));
	return std::unique_ptr<EventLoop>(new EventLoop(std::move(ring)));
}

Status EventLoop::arm(int fd)
{
	io_uring_sqe *sqe = io_uring_get_sqe(ring_.get());
	if (!sqe)
		return make_error("event loop: submission queue full");
	io_uring_prep_poll_add(sqe, fd, static_cast<unsigned>(watches_[fd].events));
	io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(fd));
	int submitted = io_uring_submit(ring_.get());
	if (submitted < 0)
		return errno_error(fmt::format("io_uring_submit (poll fd {})", fd), -submitted);
	watches_[fd].armed = true;
	return {};
}

Status EventLoop::watch(int fd, Handler handler)
{
	return watch_for(fd, POLLIN, std::move(handler));
}

Status EventLoop::watch_writable(int fd, Handler handler)
{
	return watch_for(fd, POLLOUT, std::move(handler));
}

Status EventLoop::watch_for(int fd, short events, Handler handler)
{
	if (watches_[fd].armed && watches_[fd].events != events)
		unwatch(fd);  // a poll armed for the other direction
	Watch &watch = watches_[fd];
	watch.handler = std::move(handler);
	watch.events = events;
	if (watch.armed)
		return {};
	return arm(fd);
}

void EventLoop::unwatch(int fd)
{
	auto it = watches_.find(fd);
	if (it == watches_.end())
		return;
	if (it->second.armed) {
		io_uring_sqe *sqe = io_uring_get_sqe(ring_.get());
		if (sqe) {
			io_uring_prep_poll_remove(sqe, static_cast<uint64_t>(fd));
			io_uring_sqe_set_data64(sqe, UINT64_MAX);
			io_uring_submit(ring_.get());
		}
	}
	watches_.erase(it);
}

Status EventLoop::run_once(int timeout_ms)
{
	__kernel_timespec timeout{};
	timeout.tv_sec = timeout_ms / 1000;
	timeout.tv_nsec = (timeout_ms % 1000) * 1000000LL;
	io_uring_cqe *cqe = nullptr;
	int error = io_uring_wait_cqe_timeout(ring_.get(), &cqe, timeout_ms < 0 ? nullptr : &timeout);
	++wakeups_;
	if (error == -ETIME)
		++timeouts_;
	if (error == -ETIME || error == -EINTR)
		return {};
	if (error < 0)
		return errno_error("io_uring_wait_cqe_timeout", -error);

	// Collect first: handlers may watch/unwatch and so change the ring.
	std::vector<int> ready;
	unsigned head;
	unsigned seen = 0;
	io_uring_for_each_cqe(ring_.get(), head, cqe)
	{
		++seen;
		uint64_t data = io_uring_cqe_get_data64(cqe);
		// A poll that unwatch cancelled says nothing about a later watch.
		if (data != UINT64_MAX && cqe->res != -ECANCELED)
			ready.push_back(static_cast<int>(data));
	}
	io_uring_cq_advance(ring_.get(), seen);

	for (int fd : ready) {
		auto it = watches_.find(fd);
		if (it == watches_.end())
			continue;
		it->second.armed = false;
		Handler handler = it->second.handler;  // the handler may unwatch itself
		handler();
		it = watches_.find(fd);
		if (it != watches_.end() && !it->second.armed)
			KAIROS_TRY(arm(fd));
	}
	return {};
}

}  // namespace kairos::vmm
