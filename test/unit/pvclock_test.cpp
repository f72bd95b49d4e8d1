#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "pvclock/host_clock.h"
#include "pvclock/shared_info.h"
#include "pvclock/time_scale.h"

using namespace kairos::pvclock;

namespace {

// Exact nanoseconds for `ticks` of a tsc_hz clock, in 128-bit arithmetic.
uint64_t reference_ns(uint64_t ticks, uint64_t tsc_hz)
{
	return static_cast<uint64_t>(static_cast<unsigned __int128>(ticks) * 1'000'000'000ULL / tsc_hz);
}

struct Page {
	alignas(4096) std::array<uint8_t, 4096> bytes{};
	std::span<uint8_t> span() { return bytes; }
};

}  // namespace

TEST_CASE("the scale is normalised and converts one second exactly enough", "[pvclock]")
{
	for (uint64_t hz : {1'000'000'000ULL, 1'234'567'891ULL, 2'100'000'000ULL, 3'000'000'000ULL, 4'999'999'999ULL,
			    500'000'000ULL}) {
		TimeScale scale = time_scale_for(hz);
		INFO("tsc_hz " << hz);
		CHECK(scale.mul >= (1u << 31));
		int64_t error = static_cast<int64_t>(scale_delta(hz, scale)) - 1'000'000'000LL;
		CHECK(std::abs(error) <= 1);
	}
}

TEST_CASE("10 minutes of TSC at 1-5 GHz, re-anchored every second, stay within 1 ns of a 128-bit reference",
	  "[pvclock]")
{
	// The host re-publishes every clock.refresh_ms (default 1 s): the guest
	// only ever scales a delta of at most one interval.
	for (uint64_t hz : {1'000'000'007ULL, 2'400'000'000ULL, 3'333'333'333ULL, 4'999'999'937ULL}) {
		TimeScale scale = time_scale_for(hz);
		uint64_t worst = 0;
		for (uint64_t second = 0; second < 600; ++second) {
			uint64_t anchor_tsc = second * hz + 12345;
			uint64_t anchor_ns = reference_ns(anchor_tsc, hz);
			for (uint64_t step : {uint64_t{1}, hz / 1000, hz / 3, hz / 2 + 17, hz - 1}) {
				uint64_t tsc = anchor_tsc + step;
				uint64_t guest = anchor_ns + scale_delta(step, scale);
				uint64_t exact = reference_ns(tsc, hz);
				worst = std::max(worst, guest > exact ? guest - exact : exact - guest);
			}
		}
		INFO("tsc_hz " << hz << " worst error " << worst << " ns");
		CHECK(worst <= 1);
	}
}

TEST_CASE("a measured interval gives the same scale as the nominal rate", "[pvclock]")
{
	TimeScale nominal = time_scale_for(2'000'000'000ULL);
	TimeScale measured = time_scale_for_interval(2'000'000'000ULL * 3, 3'000'000'000ULL);
	CHECK(nominal.mul == measured.mul);
	CHECK(nominal.shift == measured.shift);
	CHECK(time_scale_for_interval(0, 5).mul == 0);
}

TEST_CASE("HostClock follows a slewed clock: the rate comes from the last interval", "[pvclock]")
{
	// A fake host: TSC at exactly 2 GHz, CLOCK_MONOTONIC running 100 ppm fast
	// (as under NTP slewing).
	uint64_t tsc = 1'000'000;
	auto reader = [&tsc] {
		ClockReading reading{tsc, static_cast<uint64_t>(tsc / 2.0 * 1.0001)};
		return reading;
	};
	HostClock clock(2'000'000'000ULL, reader);
	tsc += 2'000'000'000ULL;  // one second later
	ClockReading anchor = clock.refresh();
	// The first second ran at the nominal rate: the line is 100 us behind,
	// and continues from there (no step), 100 ppm faster than measured to
	// close the gap over the next second.
	CHECK(reader().monotonic_ns - anchor.monotonic_ns == 100'000);
	tsc += 2'000'000'000ULL;
	uint64_t predicted = anchor.monotonic_ns + scale_delta(tsc - anchor.tsc, clock.scale());
	uint64_t actual = reader().monotonic_ns;
	// Within 10 ns: the gap was closed over a second of the old line's, not
	// the host's, nanoseconds (100 ppm of 100 us).
	CHECK(std::abs(static_cast<int64_t>(predicted - actual)) <= 10);
	uint64_t nominal = anchor.monotonic_ns + scale_delta(tsc - anchor.tsc, time_scale_for(2'000'000'000ULL));
	CHECK(std::abs(static_cast<int64_t>(nominal - actual)) > 190'000);
}

TEST_CASE("a real host reading pairs the TSC with CLOCK_MONOTONIC", "[pvclock]")
{
	ClockReading first = HostClock::read_now();
	ClockReading second = HostClock::read_now();
	CHECK(second.tsc >= first.tsc);
	CHECK(second.monotonic_ns >= first.monotonic_ns);
}

TEST_CASE("published time reads back through the version protocol", "[pvclock]")
{
	Page page;
	SharedInfo info(page.span(), 2);
	info.initialise();
	CHECK(info.raw()->abi_version == KAIROS_ABI_VERSION);
	CHECK(info.raw()->vcpu_count == 2);
	TimeRecord record{1000, 5'000'000'000ULL, time_scale_for(1'000'000'000ULL), KAIROS_TIME_TSC_STABLE};
	info.publish_time(1, record);
	CHECK(info.raw()->time[1].version % 2 == 0);
	CHECK(info.raw()->time[1].version > 0);
	TimeRecord back = read_time(*info.raw(), 1);
	CHECK(back.system_time == record.system_time);
	CHECK(system_time_at(back, 1000 + 250) == 5'000'000'250ULL);
	// vCPUs beyond the count are not written.
	info.publish_time(5, record);
	CHECK(info.raw()->time[5].version == 0);
}

TEST_CASE("a guest-scribbled odd version still ends even after a publish", "[pvclock]")
{
	Page page;
	SharedInfo info(page.span(), 1);
	info.raw()->time[0].version = 7;
	info.publish_time(0, TimeRecord{1, 2, time_scale_for(1'000'000'000ULL), 0});
	CHECK(info.raw()->time[0].version % 2 == 0);
	info.raw()->wc_version = 3;
	info.publish_wall_clock(1'700'000'000ULL, 5);
	CHECK(info.raw()->wc_version % 2 == 0);
	CHECK(info.raw()->wc_sec == 1'700'000'000ULL);
}

TEST_CASE("seqlock readers never see a torn record while a writer publishes", "[pvclock][threads]")
{
	Page page;
	SharedInfo info(page.span(), 1);
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> reads{0};
	std::atomic<uint64_t> torn{0};

	// Every field of record k is derived from k, so a mix of two records
	// is detectable.
	// The writer keeps going until the readers have done plenty of reads
	// concurrently with it (and at least 100k publishes).
	std::thread writer([&] {
		for (uint64_t k = 1; k < 100'000 || reads < 100'000; ++k) {
			TimeScale scale{static_cast<uint32_t>(k * 3), static_cast<int8_t>(k % 7)};
			info.publish_time(0, TimeRecord{k * 11, k * 13, scale, static_cast<uint8_t>(k % 5)});
		}
		stop = true;
	});
	std::vector<std::thread> readers;
	for (int r = 0; r < 2; ++r) {
		readers.emplace_back([&] {
			while (!stop) {
				TimeRecord record = read_time(*info.raw(), 0);
				uint64_t k = record.tsc_timestamp / 11;
				if (record.tsc_timestamp == 0)
					continue;
				bool consistent = record.tsc_timestamp == k * 11 && record.system_time == k * 13 &&
						  record.scale.mul == static_cast<uint32_t>(k * 3) &&
						  record.scale.shift == static_cast<int8_t>(k % 7) &&
						  record.flags == k % 5;
				torn += consistent ? 0 : 1;
				++reads;
			}
		});
	}
	writer.join();
	for (auto &reader : readers)
		reader.join();
	INFO(reads.load() << " reads");
	CHECK(reads > 0);
	CHECK(torn == 0);
}
