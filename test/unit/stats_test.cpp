#include <catch2/catch.hpp>

#include "vmm/stats.h"

using kairos::pvclock::ClockSample;
using kairos::vmm::drift_json;

TEST_CASE("stats: a clock's drift series is the offset change, thinned for plots", "[stats]")
{
	// A guest clock 10 ppm fast: 10 us more per host second.
	std::vector<ClockSample> samples;
	for (uint64_t i = 0; i < 2500; ++i) {
		uint64_t host = 1'000'000'000ULL + i * 1'000'000ULL;  // every 1 ms
		uint64_t guest = 5'000'000'000ULL + i * 1'000'010ULL;
		samples.push_back({host, guest, 0});
	}
	auto drift = drift_json(samples);
	CHECK(drift["samples"] == 2500);
	CHECK(drift["drift_ppm"].get<double>() == Approx(10.0).epsilon(0.01));
	const auto &series = drift["series"];
	// 2500 samples, every second one: at most ~1000 points, the first at 0.
	CHECK(series.size() == 1250);
	CHECK(series[0][0].get<double>() == 0.0);
	CHECK(series[0][1].get<double>() == 0.0);
	// The point for sample 2000: 2 s in, 20 us ahead.
	CHECK(series[1000][0].get<double>() == Approx(2.0));
	CHECK(series[1000][1].get<double>() == Approx(20.0));
}

TEST_CASE("stats: a short drift series keeps every sample", "[stats]")
{
	std::vector<ClockSample> samples = {{0, 0, 0}, {1'000'000'000ULL, 999'999'000ULL, 0}};
	auto drift = drift_json(samples);
	REQUIRE(drift["series"].size() == 2);
	CHECK(drift["series"][1][1].get<double>() == Approx(-1.0));  // 1 us behind
}
