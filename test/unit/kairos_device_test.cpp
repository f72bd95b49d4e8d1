#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "test/unit/event_file.h"
#include "vmm/kairos_device.h"

using namespace kairos;
using namespace kairos::vmm;

namespace {

struct Rig {
	GuestMemory memory = std::move(GuestMemory::create(64ULL << 20).value());
	GuestAreas areas{memory};
	pvclock::TimeService time{2'000'000'000ULL, {0, 0}};
	int upcalls = 0;
	pvclock::EventChannels events{[this] { ++upcalls; }};
	bool panicked = false;
	std::vector<std::string> lines;  // what the device logged, at every level
	Logger log{LogLevel::Debug, [this](std::string_view line) { lines.emplace_back(line); }};
	std::unique_ptr<outsourcing::TimerService> timers =
		std::move(outsourcing::TimerService::create({}, {}, log).value());
	EventFile event_file;
	std::unique_ptr<EventLog> event_log = event_file.open(log);
	KairosDevice device{areas, 2, time, events, timers.get(), [this] { panicked = true; }, log, *event_log};

	void out(uint64_t port, uint32_t value) { device.write(port, {reinterpret_cast<const uint8_t *>(&value), 4}); }
	int32_t status()
	{
		uint32_t value = 0;
		device.read(KAIROS_PORT_STATUS, {reinterpret_cast<uint8_t *>(&value), 4});
		return static_cast<int32_t>(value);
	}
	int32_t command(uint32_t command, uint32_t arg0 = 0)
	{
		out(KAIROS_PORT_ARG0, arg0);
		out(KAIROS_PORT_COMMAND, command);
		return status();
	}
	const kairos_shared_info &page_at(uint64_t pfn)
	{
		return *reinterpret_cast<const kairos_shared_info *>(memory.slice(pfn * 4096, 4096)->data());
	}
};

}  // namespace

TEST_CASE("registering the shared-info page publishes time and the header", "[kairos-device]")
{
	Rig rig;
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x200) == KAIROS_OK);
	const auto &page = rig.page_at(0x200);
	CHECK(page.abi_version == KAIROS_ABI_VERSION);
	CHECK(page.vcpu_count == 2);
	CHECK(page.publish_count == 1);
	CHECK(page.time[0].version % 2 == 0);
	CHECK(page.time[0].version > 0);
	CHECK(page.time[1].tsc_to_system_mul != 0);
	CHECK(page.wc_sec > 1'600'000'000ULL);  // CLOCK_REALTIME - CLOCK_MONOTONIC, in this century
	CHECK(rig.command(KAIROS_CMD_REFRESH_TIME) == KAIROS_OK);
	CHECK(page.publish_count == 2);
}

TEST_CASE("bad registrations are answered through the status register", "[kairos-device]")
{
	Rig rig;
	CHECK(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0) == KAIROS_EINVAL);
	CHECK(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0xffffffffu) == KAIROS_ERANGE);
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_SHARED_INFO) == KAIROS_ENOENT);
	CHECK(rig.command(999) == KAIROS_ENOSYS);
	CHECK(rig.device.failed_commands() == 4);
	// Wrong access sizes are ignored, not misread.
	uint8_t byte = KAIROS_CMD_GUEST_PANIC;
	rig.device.write(KAIROS_PORT_COMMAND, {&byte, 1});
	CHECK_FALSE(rig.panicked);
}

TEST_CASE("debug events before registration are held, then delivered", "[kairos-device]")
{
	Rig rig;
	CHECK(rig.command(KAIROS_CMD_RAISE_DEBUG) == KAIROS_OK);
	CHECK(rig.upcalls == 0);
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x300) == KAIROS_OK);
	CHECK(rig.upcalls == 1);
	CHECK((rig.page_at(0x300).pending[0] & (1ULL << KAIROS_EVENT_DEBUG)) != 0);
}

TEST_CASE("re-registration moves the page; unregistration stops writes", "[kairos-device]")
{
	Rig rig;
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x300) == KAIROS_OK);
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x301) == KAIROS_OK);
	uint64_t old_count = rig.page_at(0x300).publish_count;
	rig.time.publish();
	CHECK(rig.page_at(0x300).publish_count == old_count);
	CHECK(rig.page_at(0x301).publish_count == 2);
	REQUIRE(rig.command(KAIROS_CMD_UNREGISTER_SHARED_INFO) == KAIROS_OK);
	rig.time.publish();
	CHECK(rig.page_at(0x301).publish_count == 2);
	CHECK(rig.device.registrations() == 2);
}

TEST_CASE("the guest's panic notice and clock samples reach the host", "[kairos-device]")
{
	Rig rig;
	CHECK(rig.command(KAIROS_CMD_GUEST_PANIC) == KAIROS_OK);
	CHECK(rig.panicked);

	rig.out(KAIROS_PORT_SAMPLE_LO, 0x89abcdef);
	rig.out(KAIROS_PORT_SAMPLE_HI, 0x01234567);
	rig.out(KAIROS_PORT_SAMPLE_TAG, 2);
	rig.out(KAIROS_PORT_SAMPLE_TAG, KAIROS_SAMPLE_TAGS);  // out of range: dropped
	auto samples = rig.device.clock_samples(2);
	REQUIRE(samples.size() == 1);
	CHECK(samples[0].guest_ns == 0x0123456789abcdefULL);
	CHECK(samples[0].host_ns > 0);
	CHECK(rig.device.clock_samples(KAIROS_SAMPLE_TAGS).empty());
	CHECK(rig.device.clock_sample_count(2) == 1);
	CHECK(rig.device.clock_sample_count(0) == 0);
	CHECK(rig.device.clock_sample_count(KAIROS_SAMPLE_TAGS) == 0);
}

TEST_CASE("the VMRPC ring is validated and handed to the timer service", "[kairos-device]")
{
	Rig rig;
	auto ring = [&rig](uint32_t pfn, uint32_t pages) {
		rig.out(KAIROS_PORT_ARG0, pfn);
		rig.out(KAIROS_PORT_ARG1, pages);
		rig.out(KAIROS_PORT_COMMAND, KAIROS_CMD_REGISTER_RING);
		return rig.status();
	};
	CHECK(ring(0x400, 3) == KAIROS_EINVAL);  // the ABI fixes the size
	CHECK(ring(0, KAIROS_RING_PAGES) == KAIROS_EINVAL);
	CHECK(ring(0xffffff, KAIROS_RING_PAGES) == KAIROS_ERANGE);
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x400) == KAIROS_OK);
	CHECK(ring(0x3fe, KAIROS_RING_PAGES) == KAIROS_EBUSY);  // overlaps the shared info
	CHECK(ring(0x500, KAIROS_RING_PAGES) == KAIROS_OK);
	CHECK(rig.timers->attached());
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_RING) == KAIROS_OK);
	CHECK_FALSE(rig.timers->attached());
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_RING) == KAIROS_ENOENT);
}

TEST_CASE("the first failure of each kind is a warning with its arguments, later ones debug", "[kairos-device]")
{
	Rig rig;
	CHECK(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0xffffffffu) == KAIROS_ERANGE);
	CHECK(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0xfffffffeu) == KAIROS_ERANGE);
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_SHARED_INFO) == KAIROS_ENOENT);
	CHECK(rig.command(999) == KAIROS_ENOSYS);
	CHECK(rig.command(1000) == KAIROS_ENOSYS);  // also "unknown": the same kind
	CHECK(rig.command(KAIROS_CMD_REFRESH_TIME) == KAIROS_OK);
	CHECK(rig.device.failed_commands() == 5);
	REQUIRE(rig.lines.size() == 5);
	CHECK_THAT(rig.lines[0], Catch::StartsWith("kairos: warning: guest command") &&
					 Catch::Contains("REGISTER_SHARED_INFO") &&
					 Catch::Contains("arg0 0xffffffff") && Catch::Contains("ERANGE"));
	CHECK_THAT(rig.lines[1], Catch::StartsWith("kairos: debug: ") && Catch::Contains("arg0 0xfffffffe"));
	CHECK_THAT(rig.lines[2], Catch::StartsWith("kairos: warning: ") && Catch::Contains("UNREGISTER_SHARED_INFO") &&
					 Catch::Contains("ENOENT"));
	CHECK_THAT(rig.lines[3], Catch::Contains("999 unknown") && Catch::Contains("ENOSYS"));
	CHECK_THAT(rig.lines[4], Catch::StartsWith("kairos: debug: ") && Catch::Contains("1000 unknown"));
}

TEST_CASE("a failed re-registration changes nothing (issue 12, 7)", "[kairos-device]")
{
	Rig rig;
	auto ring = [&rig](uint32_t pfn) {
		rig.out(KAIROS_PORT_ARG0, pfn);
		rig.out(KAIROS_PORT_ARG1, KAIROS_RING_PAGES);
		rig.out(KAIROS_PORT_COMMAND, KAIROS_CMD_REGISTER_RING);
		return rig.status();
	};
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x300) == KAIROS_OK);
	REQUIRE(ring(0x500) == KAIROS_OK);
	// The shared info cannot move onto the ring: EBUSY, and the old page
	// keeps being published.
	CHECK(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x501) == KAIROS_EBUSY);
	uint64_t before = rig.page_at(0x300).publish_count;
	CHECK(rig.command(KAIROS_CMD_REFRESH_TIME) == KAIROS_OK);
	CHECK(rig.page_at(0x300).publish_count == before + 1);
	// Nor can the ring move onto the shared info: the old ring stays.
	CHECK(ring(0x2ff) == KAIROS_EBUSY);
	CHECK(rig.timers->attached());
	// A good move of the ring works, and both still unregister.
	CHECK(ring(0x600) == KAIROS_OK);
	CHECK(rig.timers->attached());
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_RING) == KAIROS_OK);
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_SHARED_INFO) == KAIROS_OK);
}

TEST_CASE("registrations and the guest's unregistrations are events; a refused one is not", "[kairos-device]")
{
	Rig rig;
	CHECK(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0) == KAIROS_EINVAL);
	REQUIRE(rig.command(KAIROS_CMD_REGISTER_SHARED_INFO, 0x400) == KAIROS_OK);
	rig.out(KAIROS_PORT_ARG0, 0x500);
	rig.out(KAIROS_PORT_ARG1, KAIROS_RING_PAGES);
	rig.out(KAIROS_PORT_COMMAND, KAIROS_CMD_REGISTER_RING);
	REQUIRE(rig.status() == KAIROS_OK);
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_RING) == KAIROS_OK);
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_RING) == KAIROS_ENOENT);
	CHECK(rig.command(KAIROS_CMD_UNREGISTER_SHARED_INFO) == KAIROS_OK);
	rig.event_log->flush();
	auto lines = rig.event_file.lines();
	REQUIRE(lines.size() == 4);
	CHECK(lines[0]["event"] == "shared-info-registered");
	CHECK(lines[0]["data"]["gpa"] == 0x400 * 4096);
	CHECK(lines[1]["event"] == "ring-registered");
	CHECK(lines[1]["data"] == nlohmann::json({{"gpa", 0x500 * 4096}, {"pages", KAIROS_RING_PAGES}}));
	CHECK(lines[2]["event"] == "ring-unregistered");
	CHECK(lines[3]["event"] == "shared-info-unregistered");
}
