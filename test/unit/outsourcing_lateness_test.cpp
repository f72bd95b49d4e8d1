#include <catch2/catch.hpp>

#include "outsourcing/lateness_histogram.h"

using namespace kairos::outsourcing;

TEST_CASE("lateness buckets cover every uint64 and are tight", "[outsourcing][lateness]")
{
	uint64_t values[] = {0, 1, 63, 64, 65, 127, 128, 1000, 123456789, UINT64_MAX / 3, UINT64_MAX - 1, UINT64_MAX};
	for (uint64_t value : values) {
		size_t bucket = LatenessHistogram::bucket_of(value);
		REQUIRE(bucket < LatenessHistogram::kBuckets);
		uint64_t top = LatenessHistogram::bucket_top(bucket);
		CHECK(top >= value);
		// Within 1/64 above the value.
		CHECK(top - value <= value / 64);
	}
	CHECK(LatenessHistogram::bucket_of(UINT64_MAX) == LatenessHistogram::kBuckets - 1);
	CHECK(LatenessHistogram::bucket_top(LatenessHistogram::kBuckets - 1) == UINT64_MAX);
	// Buckets are ordered.
	for (size_t bucket = 1; bucket < LatenessHistogram::kBuckets; ++bucket)
		REQUIRE(LatenessHistogram::bucket_top(bucket) > LatenessHistogram::bucket_top(bucket - 1));
}

TEST_CASE("lateness percentiles", "[outsourcing][lateness]")
{
	LatenessHistogram histogram;
	CHECK(histogram.summary().samples == 0);
	CHECK(histogram.summary().p99_ns == 0);

	for (uint64_t value = 1; value <= 100000; ++value)
		histogram.record(value * 1000);  // 1 us .. 100 ms
	LatenessSummary summary = histogram.summary();
	CHECK(summary.samples == 100000);
	CHECK(summary.max_ns == 100'000'000u);
	auto near = [](uint64_t got, uint64_t want) { return got >= want && got <= want + want / 64; };
	CHECK(near(summary.p50_ns, 50'000'000));
	CHECK(near(summary.p90_ns, 90'000'000));
	CHECK(near(summary.p99_ns, 99'000'000));
	CHECK(near(summary.p999_ns, 99'900'000));
	CHECK(summary.p999_ns <= summary.max_ns);

	histogram.clear();
	histogram.record(5);
	CHECK(histogram.summary().p50_ns == 5u);
	CHECK(histogram.summary().max_ns == 5u);
	histogram.record(UINT64_MAX);
	CHECK(histogram.summary().max_ns == UINT64_MAX);
	CHECK(histogram.summary().p999_ns == UINT64_MAX);
}

TEST_CASE("lateness summary agrees with percentile", "[outsourcing][lateness]")
{
	// summary() walks the buckets once for all four; percentile() once each.
	LatenessHistogram histogram;
	uint64_t value = 12345;
	for (int round = 0; round < 5; ++round) {
		for (int i = 0; i < 997; ++i) {
			value = value * 6364136223846793005u + 1442695040888963407u;
			histogram.record(value >> (i % 64));
		}
		LatenessSummary summary = histogram.summary();
		CHECK(summary.p50_ns == histogram.percentile(500));
		CHECK(summary.p90_ns == histogram.percentile(900));
		CHECK(summary.p99_ns == histogram.percentile(990));
		CHECK(summary.p999_ns == histogram.percentile(999));
		CHECK(summary.p50_ns <= summary.p90_ns);
		CHECK(summary.p999_ns <= summary.max_ns);
	}
}
