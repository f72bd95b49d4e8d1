#include <catch2/catch.hpp>

#include <thread>

#include "base/event_fd.h"
#include "vmm/event_loop.h"

using kairos::EventFd;
using kairos::vmm::EventLoop;

// Machine::run waits with no timeout (issue 9: no periodic tick): the loop
// must wake for a watched fd alone, and count the wake-ups that were only a
// timeout, which is how --stats shows that no tick came back.
TEST_CASE("event loop: with no timeout it sleeps until a watched fd is ready", "[loop]")
{
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto wake = EventFd::create(EventFd::Mode::NonBlocking, "the test's wake-up");
	REQUIRE(wake.ok());
	int handled = 0;
	REQUIRE((*loop)->watch(wake->fd(),
			       [&] {
				       wake->consume();
				       ++handled;
			       })
			.ok());

	std::thread signaller([&] {
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
		wake->signal();
	});
	REQUIRE((*loop)->run_once(-1).ok());
	signaller.join();
	CHECK(handled == 1);
	CHECK((*loop)->wakeups() == 1);
	CHECK((*loop)->timeouts() == 0);
}

TEST_CASE("event loop: a wait that ends with no event counts as a timeout", "[loop]")
{
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	REQUIRE((*loop)->run_once(5).ok());
	REQUIRE((*loop)->run_once(5).ok());
	CHECK((*loop)->wakeups() == 2);
	CHECK((*loop)->timeouts() == 2);

	auto wake = EventFd::create(EventFd::Mode::NonBlocking, "the test's wake-up");
	REQUIRE(wake.ok());
	REQUIRE((*loop)->watch(wake->fd(), [&] { wake->consume(); }).ok());
	wake->signal();
	REQUIRE((*loop)->run_once(1000).ok());
	CHECK((*loop)->wakeups() == 3);
	CHECK((*loop)->timeouts() == 2);  // this one had an event
}
