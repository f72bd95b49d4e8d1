#include <catch2/catch.hpp>

#include "pvclock/clock_drift.h"

using namespace kairos::pvclock;

TEST_CASE("a guest clock running 50 ppm fast shows +50 ppm", "[drift]")
{
	std::vector<ClockSample> samples;
	for (uint64_t s = 0; s <= 30; ++s) {
		uint64_t host = 1'000'000'000'000ULL + s * 1'000'000'000ULL;
		uint64_t guest = 77'000'000ULL + s * 1'000'050'000ULL;  // +50 us per second
		samples.push_back({host, guest, 0});
	}
	DriftSummary summary = summarise_drift(samples);
	CHECK(summary.samples == 31);
	CHECK(summary.span_s == Approx(30.0));
	CHECK(summary.drift_ppm == Approx(50.0).margin(1e-6));
	CHECK(summary.end_to_end_us == Approx(1500.0).margin(1e-6));
	CHECK(summary.max_deviation_us < 1e-6);
}

TEST_CASE("jitter around a perfect clock averages out of the slope", "[drift]")
{
	std::vector<ClockSample> samples;
	for (uint64_t s = 0; s < 60; ++s) {
		int64_t jitter_ns = (s % 2 ? 1 : -1) * 20'000;  // +-20 us of reading latency
		samples.push_back(
			{s * 1'000'000'000ULL,
			 static_cast<uint64_t>(5'000'000'000LL + static_cast<int64_t>(s) * 1'000'000'000LL + jitter_ns),
			 0});
	}
	DriftSummary summary = summarise_drift(samples);
	CHECK(std::abs(summary.drift_ppm) < 0.1);
	CHECK(summary.max_deviation_us == Approx(20.0).margin(1.0));  // the fit tilts slightly
}

TEST_CASE("fewer than two samples give no drift", "[drift]")
{
	CHECK(summarise_drift({}).samples == 0);
	CHECK(summarise_drift({{1, 2, 3}}).drift_ppm == 0);
}

TEST_CASE("latency spikes distort the plain fit but not the envelope", "[drift]")
{
	// A clock 10 ppm fast, read with 20 us of latency normally and 15 ms
	// now and then (a preempted vCPU), more often late in the run.
	std::vector<ClockSample> samples;
	for (uint64_t i = 0; i < 300; ++i) {
		uint64_t host = i * 100'000'000ULL;  // every 100 ms
		uint64_t late_ns = (i > 200 && i % 7 == 0) ? 15'000'000 : 20'000;
		uint64_t guest = host + host / 100'000 - late_ns;  // +10 ppm
		samples.push_back({host, guest, 0});
	}
	DriftSummary summary = summarise_drift(samples);
	CHECK(std::abs(summary.drift_ppm - 10.0) > 5.0);  // the plain fit is pulled off
	CHECK(summary.envelope_drift_ppm == Approx(10.0).margin(0.5));
}

TEST_CASE("the realtime offset is the least delayed guest-minus-host wall clock", "[drift]")
{
	// Guest wall clock 300 ms ahead; samples arrive 1-40 ms late.
	std::vector<ClockSample> samples;
	for (uint64_t i = 0; i < 10; ++i) {
		uint64_t host_realtime = 1'800'000'000'000'000'000ULL + i * 1'000'000'000ULL;
		uint64_t guest = host_realtime + 300'000'000ULL - (1'000'000ULL + (i % 4) * 13'000'000ULL);
		samples.push_back({i * 1'000'000'000ULL, guest, host_realtime});
	}
	CHECK(summarise_drift(samples).realtime_offset_ms == Approx(299.0).margin(0.01));
}
