#include "pvclock/host_clock.h"

#include "base/clock.h"

#include <time.h>
#include <x86intrin.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace kairos::pvclock {
namespace {

// Re-measure the rate only over intervals long enough that the reading
// jitter (a microsecond or so) is negligible against them.
constexpr uint64_t kMinimumRateIntervalNs = 50'000'000;

}  // namespace

ClockReading HostClock::read_now()
{
	ClockReading best{};
	uint64_t best_window = UINT64_MAX;
	for (int attempt = 0; attempt < 5; ++attempt) {
		uint64_t before = __rdtsc();
		uint64_t ns = clock_now_ns(CLOCK_MONOTONIC);
		uint64_t after = __rdtsc();
		if (after - before < best_window) {
			best_window = after - before;
			best = {before + (after - before) / 2, ns};
		}
	}
	return best;
}

HostClock::HostClock(uint64_t tsc_hz, Reader reader)
	: reader_(reader ? std::move(reader) : Reader(read_now)), scale_(time_scale_for(tsc_hz))
{
	anchor_ = reader_();
}

ClockReading HostClock::refresh()
{
	ClockReading now = reader_();
	if (now.monotonic_ns > anchor_.monotonic_ns + kMinimumRateIntervalNs && now.tsc > anchor_.tsc)
		scale_ = time_scale_for_interval(now.tsc - anchor_.tsc, now.monotonic_ns - anchor_.monotonic_ns);
	anchor_ = now;
	return anchor_;
}

uint64_t thread_run_delay_ns(uint64_t thread_id)
{
	std::ifstream schedstat("/proc/self/task/" + std::to_string(thread_id) + "/schedstat");
	uint64_t running = 0;
	uint64_t waiting = 0;
	if (!(schedstat >> running >> waiting))
		return 0;
	return waiting;
}

uint64_t thread_involuntary_switches(uint64_t thread_id)
{
	std::ifstream status("/proc/self/task/" + std::to_string(thread_id) + "/status");
	std::string line;
	constexpr std::string_view kKey = "nonvoluntary_ctxt_switches:";
	while (std::getline(status, line))
		if (line.rfind(kKey, 0) == 0)
			return std::strtoull(line.c_str() + kKey.size(), nullptr, 10);
	return 0;
}

}  // namespace kairos::pvclock
