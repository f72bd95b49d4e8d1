#include <catch2/catch.hpp>

#include <signal.h>

#include "vmm/stop_sources.h"

using namespace kairos::vmm;

namespace {

// Runs the loop until a stop is requested or about a second passes.
void run_until_stop(EventLoop &loop, const Shutdown &shutdown)
{
	for (int i = 0; i < 100 && !shutdown.requested(); ++i)
		REQUIRE(loop.run_once(10).ok());
}

}  // namespace

TEST_CASE("stop sources: a signal raised during setup stops the VM once the loop runs", "[stop]")
{
	REQUIRE(block_stop_signals().ok());
	// Raised before the signalfd exists, as a SIGTERM during setup is:
	// blocked, it waits instead of killing the process.
	REQUIRE(raise(SIGHUP) == 0);
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto shutdown = Shutdown::create();
	REQUIRE(shutdown.ok());
	auto signals = StopSignals::watch(**loop, *shutdown);
	REQUIRE(signals.ok());
	run_until_stop(**loop, *shutdown);
	REQUIRE(shutdown->requested());
	CHECK(shutdown->reason() == StopReason::Signal);
	CHECK(shutdown->signal_number() == SIGHUP);
	CHECK(shutdown->detail() == "received HUP");
}

TEST_CASE("stop sources: a panic notice stops the VM after its grace, not before", "[stop]")
{
	auto loop = EventLoop::create();
	REQUIRE(loop.ok());
	auto shutdown = Shutdown::create();
	REQUIRE(shutdown.ok());
	auto notice = PanicNotice::watch(**loop, *shutdown, 50'000'000);  // 50 ms
	REQUIRE(notice.ok());
	REQUIRE((*loop)->run_once(10).ok());
	CHECK_FALSE(shutdown->requested());  // no notice, no stop
	notice->notice();
	CHECK_FALSE(shutdown->requested());  // the grace runs first
	run_until_stop(**loop, *shutdown);
	REQUIRE(shutdown->requested());
	CHECK(shutdown->reason() == StopReason::GuestPanic);
}

TEST_CASE("exit codes: each stop reason has the documented code; Ctrl-A x is a request, not a signal", "[shutdown]")
{
	using kairos::vmm::exit_code_for;
	CHECK(exit_code_for(StopReason::PowerOff, 0) == 0);
	CHECK(exit_code_for(StopReason::Reset, 0) == 0);
	CHECK(exit_code_for(StopReason::UserQuit, 0) == 0);
	CHECK(std::string(kairos::vmm::describe(StopReason::UserQuit)) == "quit by the user");
	CHECK(exit_code_for(StopReason::HostError, 0) == 1);
	CHECK(exit_code_for(StopReason::GuestPanic, 0) == 3);
	CHECK(exit_code_for(StopReason::TripleFault, 0) == 4);
	CHECK(exit_code_for(StopReason::GuestError, 0) == 5);
	CHECK(exit_code_for(StopReason::Signal, SIGTERM) == 143);
	CHECK(exit_code_for(StopReason::Signal, SIGINT) == 130);
}
