#include "pvclock/host_clock.h"

#include "base/clock.h"

#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace kairos::pvclock {
namespace {

// Re-measure the rate only over intervals long enough that the reading
// jitter (a microsecond or so) is negligible against them.
constexpr uint64_t kMinimumRateIntervalNs = 50'000'000;
// The gap to CLOCK_MONOTONIC is closed over the time since the last refresh
// (so a refresh every minute lands on the host clock at the next one), but
// over no less than a second, so that reading jitter on frequent refreshes
// moves the rate by parts per million, not per thousand.
constexpr uint64_t kMinimumHorizonNs = 1'000'000'000;
// At most as fast as adjtimex(2) slews (MAXFREQ, 500 ppm).
constexpr int64_t kMaximumSlewPpb = 500'000;
constexpr int64_t kPpb = 1'000'000'000;
// A line is kept for at least this long: each new one starts up to a few ns
// ahead (rounding up, see continuity_allowance_ns), which the slew then
// removes; refreshing faster (outsourced timers may expire at kHz rates)
// would only pile those up, and the line is already within microseconds.
constexpr uint64_t kMinimumLineNs = 1'000'000;
// Further behind than this, a step forward (which cannot make time go back)
// beats a slew of a second or more.
constexpr int64_t kStepForwardBeyondNs = 500'000;

// Nanoseconds in `ticks` rounded up, where scale_delta() rounds down: the
// exact value of the line, as an upper bound.
uint64_t scale_delta_up(uint64_t ticks, TimeScale scale)
{
	unsigned __int128 product = static_cast<unsigned __int128>(ticks) * scale.mul;
	unsigned bits = 32;
	if (scale.shift < 0)
		bits += static_cast<unsigned>(-scale.shift);
	else
		product <<= scale.shift;
	unsigned __int128 one = static_cast<unsigned __int128>(1) << bits;
	return static_cast<uint64_t>((product + one - 1) >> bits);
}

// scale_delta() drops the low -shift bits of the delta first: a new anchor
// a multiple of 2^-shift ticks after the old one drops the same bits.
uint64_t align_down(uint64_t ticks, TimeScale scale)
{
	if (scale.shift >= 0)
		return ticks;
	return ticks & ~((uint64_t{1} << -scale.shift) - 1);
}

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
	: reader_(reader ? std::move(reader) : Reader(read_now)), tsc_hz_(tsc_hz), scale_(time_scale_for(tsc_hz)),
	  rate_ticks_(tsc_hz)
{
	anchor_ = reader_();
	rate_start_ = anchor_;
}

ClockReading HostClock::refresh()
{
	ClockReading now = reader_();
	if (now.tsc < anchor_.tsc + ticks_in(kMinimumLineNs))
		return anchor_;
	measure_rate(now);
	uint64_t elapsed_ticks = align_down(now.tsc - anchor_.tsc, scale_);
	// Where the published line stands now, rounded up: with any later
	// delta, the new line is then at least where the old one is.
	uint64_t system_ns = anchor_.monotonic_ns + scale_delta_up(elapsed_ticks, scale_);
	int64_t ahead_ns = static_cast<int64_t>(system_ns - now.monotonic_ns);
	if (ahead_ns < -kStepForwardBeyondNs) {
		system_ns = now.monotonic_ns;
		ahead_ns = 0;
	}
	uint64_t horizon_ns = std::max(scale_delta(elapsed_ticks, scale_), kMinimumHorizonNs);
	TimeScale next = slewed_scale(ahead_ns, horizon_ns);
	system_ns += continuity_allowance_ns(next);
	anchor_ = {anchor_.tsc + elapsed_ticks, system_ns};
	scale_ = next;
	return anchor_;
}

// At the nominal rate: close enough for the windows it measures.
uint64_t HostClock::ticks_in(uint64_t nanoseconds) const
{
	return static_cast<uint64_t>(static_cast<unsigned __int128>(tsc_hz_) * nanoseconds / kPpb);
}

void HostClock::measure_rate(ClockReading now)
{
	if (now.monotonic_ns < rate_start_.monotonic_ns + kMinimumRateIntervalNs || now.tsc <= rate_start_.tsc)
		return;
	rate_ticks_ = now.tsc - rate_start_.tsc;
	rate_ns_ = now.monotonic_ns - rate_start_.monotonic_ns;
	rate_start_ = now;
}

// The measured rate, slowed (guest ahead) or sped up to close the gap over
// horizon_ns, by at most kMaximumSlewPpb.
TimeScale HostClock::slewed_scale(int64_t ahead_ns, uint64_t horizon_ns) const
{
	__int128 slew_ppb = static_cast<__int128>(-ahead_ns) * kPpb / static_cast<__int128>(horizon_ns);
	slew_ppb = std::clamp<__int128>(slew_ppb, -kMaximumSlewPpb, kMaximumSlewPpb);
	unsigned __int128 ticks = static_cast<unsigned __int128>(rate_ticks_) * kPpb;
	unsigned __int128 nanoseconds =
		static_cast<unsigned __int128>(rate_ns_) * static_cast<uint64_t>(kPpb + slew_ppb);
	return time_scale_for_ratio(ticks, nanoseconds);
}

// What the new line must start above the old one's exact value so that it
// stays on or above the old line for kPublishWindowNs. With the same shift,
// only a smaller mul falls behind, by at most what it loses over the window
// plus 1 ns of rounding; a changed shift rounds deltas in other units, which
// costs up to 3 ns more.
uint64_t HostClock::continuity_allowance_ns(TimeScale next) const
{
	uint64_t window_ticks = ticks_in(kPublishWindowNs);
	uint64_t old_ns = scale_delta(window_ticks, scale_);
	uint64_t new_ns = scale_delta(window_ticks, next);
	uint64_t lost_ns = old_ns > new_ns ? old_ns - new_ns : 0;
	if (next.shift != scale_.shift)
		return lost_ns + 3;
	return next.mul < scale_.mul ? lost_ns + 1 : 0;
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
