// LatenessHistogram: how late the host fired timers, over a whole run, in
// bounded memory. Log-linear buckets (as HdrHistogram): values below 64 ns
// are exact, larger ones fall in one of 64 buckets per power of two, so a
// reported percentile is within 1/64 (1.6 %) above the true value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace kairos::outsourcing {

struct LatenessSummary {
	uint64_t samples = 0;
	uint64_t p50_ns = 0;
	uint64_t p90_ns = 0;
	uint64_t p99_ns = 0;
	uint64_t p999_ns = 0;
	uint64_t max_ns = 0;  // exact
};

class LatenessHistogram {
public:
	void record(uint64_t lateness_ns);
	// The smallest recorded value v' with at least per_mille / 1000 of
	// the samples <= v', rounded up to its bucket's top (never above max).
	uint64_t percentile(uint32_t per_mille) const;
	LatenessSummary summary() const;
	// samples and max_ns only, percentiles 0: no walk.
	LatenessSummary counts() const { return {.samples = samples_, .max_ns = max_}; }
	void clear();

	static constexpr unsigned kSubBucketBits = 6;
	static constexpr size_t kSubBuckets = size_t{1} << kSubBucketBits;
	static constexpr size_t kBuckets = kSubBuckets + (64 - kSubBucketBits) * kSubBuckets;
	static constexpr size_t kGroups = kBuckets / kSubBuckets;  // one per power of two

	static size_t bucket_of(uint64_t value);
	static uint64_t bucket_top(size_t bucket);

private:
	uint64_t rank_of(uint32_t per_mille) const;

	std::array<uint64_t, kBuckets> counts_{};
	std::array<uint64_t, kGroups> group_counts_{};
	uint64_t samples_ = 0;
	uint64_t max_ = 0;
};

}  // namespace kairos::outsourcing
