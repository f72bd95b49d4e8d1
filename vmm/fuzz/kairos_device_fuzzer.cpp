// libFuzzer target: a guest's port writes and reads to the Kairos device
// (kairos_abi.h, "Ports" and "Commands"), in any order, width and value:
// registrations of the shared-info page and the ring anywhere (in RAM, out
// of it, overlapping, twice), the doorbell, acks, samples, panics. Besides
// what the sanitizers catch, it checks what the host must hold to whatever
// the guest does, and traps when one breaks.
//
// Input: a sequence of 6-byte operations: offset, width and read/write in
// one byte, a value of 4 bytes, and a byte that steers a value towards a
// page frame inside the guest's 16 MiB (so registrations can succeed).
#include <cstdint>
#include <cstring>
#include <memory>

#include "outsourcing/timer_service.h"
#include "pvclock/event_channels.h"
#include "pvclock/time_service.h"
#include "test/fuzz/fuzz_check.h"
#include "vmm/event_log.h"
#include "vmm/guest_areas.h"
#include "vmm/guest_memory.h"
#include "vmm/kairos_device.h"

using namespace kairos;
using namespace kairos::vmm;

namespace {

constexpr uint64_t kMemoryBytes = 16ULL << 20;
constexpr uint64_t kPages = kMemoryBytes / 4096;

// One guest, kept across inputs (building it is the slow part); each input
// starts by unregistering what the last one left.
struct Guest {
	GuestMemory memory = std::move(GuestMemory::create(kMemoryBytes).value());
	GuestAreas areas{memory};
	pvclock::TimeService time{2'000'000'000ULL, {0, 0}};
	pvclock::EventChannels events{[] {}};
	// Silent: a failing guest command is what the fuzzer sends all day.
	Logger quiet{LogLevel::Error, [](std::string_view) {}};
	std::unique_ptr<outsourcing::TimerService> timers =
		std::move(outsourcing::TimerService::create({}, {}, quiet).value());
	std::unique_ptr<EventLog> event_log = EventLog::disabled(quiet);
	KairosDevice device{areas, 2, time, events, timers.get(), [] {}, quiet, *event_log};

	void out(uint64_t offset, uint32_t value, size_t width)
	{
		device.write(offset, {reinterpret_cast<const uint8_t *>(&value), width});
	}
	uint32_t in(uint64_t offset, size_t width)
	{
		uint32_t value = 0;
		device.read(offset, {reinterpret_cast<uint8_t *>(&value), width});
		return value;
	}
	void command(uint32_t command) { out(KAIROS_PORT_COMMAND, command, 4); }
};

Guest &guest()
{
	static Guest instance;
	return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Guest &g = guest();
	g.command(KAIROS_CMD_UNREGISTER_RING);
	g.command(KAIROS_CMD_UNREGISTER_SHARED_INFO);
	for (size_t at = 0; at + 6 <= size; at += 6) {
		uint8_t shape = data[at];
		uint32_t value = 0;
		std::memcpy(&value, data + at + 1, 4);
		uint8_t steer = data[at + 5];
		uint64_t offset = (shape & 0x3f) % (KAIROS_PORT_COUNT + 4);  // a few past the end too
		size_t width = size_t{1} << ((shape >> 6) % 3);              // 1, 2 or 4
		if (steer & 1)
			value = static_cast<uint32_t>(value % kPages);  // a PFN in RAM
		if (steer & 2)
			value %= 16;  // a small command number or page count
		if (steer & 4)
			g.in(offset, width);
		else
			g.out(offset, value, width);
		FUZZ_CHECK(g.device.failed_commands() <= g.device.commands());
	}
	// Counted, not copied: the samples outlive the input (g is for the
	// whole run), and copying up to kMaxSamplesPerTag of them for every
	// input slowed the campaign as they piled up.
	for (uint32_t tag = 0; tag <= KAIROS_SAMPLE_TAGS; ++tag)
		FUZZ_CHECK(g.device.clock_sample_count(tag) <= KairosDevice::kMaxSamplesPerTag);
	// Whatever happened, a status read and a clean unregistration work.
	g.in(KAIROS_PORT_STATUS, 4);
	g.command(KAIROS_CMD_UNREGISTER_RING);
	g.command(KAIROS_CMD_UNREGISTER_SHARED_INFO);
	FUZZ_CHECK(!g.timers->attached());
	return 0;
}
