#include <catch2/catch.hpp>

#include "pvclock/clock_drift.h"

using namespace kairos::pvclock;

TEST_CASE("a guest clock running 50 ppm fast shows +50 ppm", "[drift]")
{
	std::vector<ClockSample> samples;
	for (uint64_t s = 0; s <= 30; ++s) {
		uint64_t host = 1'000'000'000'000ULL + s * 1'000'000'000ULL;
		uint64_t guest = 77'000'000ULL + s * 1'000'050'000ULL;  // +50 us per second
		samples.push_back({host, guest});
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
		samples.push_back({s * 1'000'000'000ULL, static_cast<uint64_t>(5'000'000'000LL + static_cast<int64_t>(s) * 1'000'000'000LL + jitter_ns)});
	}
	DriftSummary summary = summarise_drift(samples);
	CHECK(std::abs(summary.drift_ppm) < 0.1);
	CHECK(summary.max_deviation_us == Approx(20.0).margin(1.0));  // the fit tilts slightly
}

TEST_CASE("fewer than two samples give no drift", "[drift]")
{
	CHECK(summarise_drift({}).samples == 0);
	CHECK(summarise_drift({{1, 2}}).drift_ppm == 0);
}
