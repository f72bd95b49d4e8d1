#include <catch2/catch.hpp>

#include <poll.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/event_fd.h"
#include "devices/virtio/device_thread.h"

using kairos::EventFd;
using kairos::make_error;
using kairos::Status;
using kairos::devices::virtio::DeviceCounters;
using kairos::devices::virtio::DeviceThread;

namespace {

// A serve loop as a device has one: wait on the control eventfd, end on
// stop; a pending reset calls forget (under the mutex) and is acknowledged.
void serve_until_stop(
	DeviceThread &thread, const EventFd &control, const std::function<void()> &forget = [] {})
{
	for (;;) {
		pollfd fd{control.fd(), POLLIN, 0};
		(void)poll(&fd, 1, -1);
		control.consume();
		std::lock_guard lock(thread.mutex());
		if (thread.stop_requested())
			return;
		if (thread.reset_pending()) {
			forget();
			thread.reset_done(thread.reset_requests());
		}
	}
}

EventFd make_control()
{
	auto control = EventFd::create(EventFd::Mode::NonBlocking, "a device's control");
	REQUIRE(control);
	return std::move(control).value();
}

}  // namespace

TEST_CASE("device thread: a failed confinement is start's error and leaves no thread", "[virtio]")
{
	DeviceThread thread("virtio-test a");
	bool served = false;
	const Status status = thread.start([] { return Status(make_error("no seccomp here")); },
					   {.serve = [&] { served = true; }, .lost = [] {}, .finish = [] {}});
	REQUIRE_FALSE(status.ok());
	CHECK(status.error().message == "no seccomp here");
	CHECK_FALSE(served);
	std::lock_guard lock(thread.mutex());
	CHECK_FALSE(thread.running());
}

TEST_CASE("device thread: a throwing confinement is an error naming the device", "[virtio]")
{
	DeviceThread thread("virtio-test b");
	const Status status = thread.start([]() -> Status { throw std::runtime_error("boom"); },
					   {.serve = [] {}, .lost = [] {}, .finish = [] {}});
	REQUIRE_FALSE(status.ok());
	CHECK(status.error().message == "virtio-test b: confining its thread: boom");
}

TEST_CASE("device thread: runs confined, serves until stop, then finishes", "[virtio]")
{
	const EventFd control = make_control();
	DeviceThread thread("virtio-test c");
	std::vector<std::string> steps;  // written by the thread only, read after join
	const Status status = thread.start(
		[&] {
			steps.push_back("confine");
			return Status();
		},
		{.serve =
			 [&] {
				 steps.push_back("serve");
				 serve_until_stop(thread, control);
			 },
		 .lost = [&] { steps.push_back("lost"); },
		 .finish = [&] { steps.push_back("finish"); }});
	REQUIRE(status.ok());
	{
		std::lock_guard lock(thread.mutex());
		CHECK(thread.running());
	}
	CHECK_FALSE(thread.start({}, {.serve = [] {}, .lost = [] {}, .finish = [] {}}).ok());
	thread.stop(control);
	CHECK(steps == std::vector<std::string>{"confine", "serve", "finish"});
	std::lock_guard lock(thread.mutex());
	CHECK_FALSE(thread.running());
}

TEST_CASE("device thread: an exception from serve is lost, then finish; nothing escapes", "[virtio]")
{
	const EventFd control = make_control();
	DeviceThread thread("virtio-test d");
	std::vector<std::string> steps;
	REQUIRE(thread.start({}, {.serve = [] { throw std::bad_alloc(); },
				  .lost = [&] { steps.push_back("lost"); },
				  .finish = [&] { steps.push_back("finish"); }})
			.ok());
	// A caller waiting for the thread (a reset) wakes when it ends.
	{
		std::unique_lock lock(thread.mutex());
		thread.changed().wait(lock, [&] { return !thread.running(); });
	}
	thread.stop(control);
	CHECK(steps == std::vector<std::string>{"lost", "finish"});
}

TEST_CASE("device counters: the snapshot reads every counter", "[virtio]")
{
	DeviceCounters counters;
	DeviceCounters::add(counters.requests, 2);
	DeviceCounters::add(counters.bytes_read, 3);
	DeviceCounters::add(counters.bytes_written, 4);
	DeviceCounters::add(counters.errors);
	DeviceCounters::add(counters.notifications, 5);
	DeviceCounters::add(counters.interrupts, 6);
	DeviceCounters::add(counters.interrupts_suppressed, 7);
	const auto stats = counters.snapshot();
	CHECK(stats.requests == 2);
	CHECK(stats.bytes_read == 3);
	CHECK(stats.bytes_written == 4);
	CHECK(stats.errors == 1);
	CHECK(stats.notifications == 5);
	CHECK(stats.interrupts == 6);
	CHECK(stats.interrupts_suppressed == 7);
}

TEST_CASE("device thread: a reset returns once the thread acknowledged it", "[virtio]")
{
	const EventFd control = make_control();
	DeviceThread thread("virtio-test e");
	bool pending = true;  // an activation not taken yet, under the mutex
	bool queues = true;   // the thread's queues
	REQUIRE(thread.start({}, {.serve = [&] { serve_until_stop(thread, control, [&] { queues = false; }); },
				  .lost = [] {},
				  .finish = [] {}})
			.ok());
	thread.request_reset(control, [&] { pending = false; });
	{
		std::lock_guard lock(thread.mutex());
		CHECK_FALSE(pending);
		CHECK_FALSE(queues);
		CHECK_FALSE(thread.reset_pending());
	}
	thread.stop(control);
	// With the thread gone a reset only drops what is pending.
	pending = true;
	thread.request_reset(control, [&] { pending = false; });
	CHECK_FALSE(pending);
}
