// Pause and resume (kairos ctl): the paused interval is stolen time in the
// Kairos page, on top of the vCPU threads' own run delay, and guest time
// keeps following the host's (README "Driving a running VM").
#include <catch2/catch.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "pvclock/shared_info.h"
#include "pvclock/time_service.h"

using namespace kairos::pvclock;

TEST_CASE("pause: the paused interval is every vCPU's stolen time from the next publish", "[control]")
{
	std::vector<uint8_t> page_bytes(KAIROS_PAGE_SIZE);  // malloc's alignment is enough for its atomics
	SharedInfo page(page_bytes, 2);
	page.initialise();
	TimeService time(2'000'000'000ULL, {0, 0});
	// Both "vCPU threads" are this one: its run delay is what is read.
	auto self = static_cast<uint64_t>(syscall(SYS_gettid));
	time.set_vcpu_threads([self](uint32_t) { return self; });
	time.attach(&page);
	const kairos_shared_info &info = *page.raw();
	// Each slot's own: the thread's run delay is read once per vCPU, and
	// a loaded host may delay this thread between the two reads.
	const uint64_t before[2] = {info.stolen_ns[0], info.stolen_ns[1]};
	uint64_t system_before = time.last_system_time();
	CHECK(before[1] < 5'000'000'000ULL);

	constexpr uint64_t kPausedNs = 5'000'000'000ULL;
	time.add_stolen_ns(kPausedNs);
	CHECK(info.stolen_ns[0] == before[0]);  // seen from the next publish on
	time.publish();
	CHECK(info.stolen_ns[0] >= before[0] + kPausedNs);
	CHECK(info.stolen_ns[1] >= before[1] + kPausedNs);
	// Time itself was not held back: it is the host's, and moved forward.
	CHECK(time.last_system_time() >= system_before);
	// A time-only publish (before a timer event) leaves stolen time alone.
	uint64_t stolen = info.stolen_ns[0];
	time.publish_time();
	CHECK(info.stolen_ns[0] == stolen);
	time.detach();
}
