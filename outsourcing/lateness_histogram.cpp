#include "outsourcing/lateness_histogram.h"

#include <algorithm>
#include <bit>

namespace kairos::outsourcing {

size_t LatenessHistogram::bucket_of(uint64_t value)
{
	if (value < kSubBuckets)
		return static_cast<size_t>(value);
	unsigned exponent = 63 - static_cast<unsigned>(std::countl_zero(value));  // >= kSubBucketBits
	unsigned shift = exponent - kSubBucketBits;
	size_t sub_bucket = static_cast<size_t>((value >> shift) - kSubBuckets);
	return kSubBuckets + shift * kSubBuckets + sub_bucket;
}

uint64_t LatenessHistogram::bucket_top(size_t bucket)
{
	if (bucket < kSubBuckets)
		return bucket;
	size_t shift = (bucket - kSubBuckets) / kSubBuckets;
	uint64_t sub_bucket = (bucket - kSubBuckets) % kSubBuckets;
	uint64_t bottom = (kSubBuckets + sub_bucket) << shift;
	return bottom + ((uint64_t{1} << shift) - 1);
}

void LatenessHistogram::record(uint64_t lateness_ns)
{
	size_t bucket = bucket_of(lateness_ns);
	++counts_[bucket];
	++group_counts_[bucket / kSubBuckets];
	++samples_;
	max_ = std::max(max_, lateness_ns);
}

// The rank of the sample at this percentile, rounded up, at least 1.
uint64_t LatenessHistogram::rank_of(uint32_t per_mille) const
{
	return std::max<uint64_t>(1, (samples_ * per_mille + 999) / 1000);
}

uint64_t LatenessHistogram::percentile(uint32_t per_mille) const
{
	if (samples_ == 0)
		return 0;
	uint64_t rank = rank_of(per_mille);
	uint64_t seen = 0;
	for (size_t bucket = 0; bucket < kBuckets; ++bucket) {
		seen += counts_[bucket];
		if (seen >= rank)
			return std::min(bucket_top(bucket), max_);
	}
	return max_;
}

LatenessSummary LatenessHistogram::summary() const
{
	LatenessSummary summary{.samples = samples_, .max_ns = max_};
	if (samples_ == 0)
		return summary;
	// One walk for the four percentiles, a group of kSubBuckets at a time
	// where no percentile falls in the group: --stats and the control
	// socket ask for this while a VM runs, and a full walk is 3,776 buckets.
	const std::array<uint64_t, 4> ranks = {rank_of(500), rank_of(900), rank_of(990), rank_of(999)};
	std::array<uint64_t *, 4> out = {&summary.p50_ns, &summary.p90_ns, &summary.p99_ns, &summary.p999_ns};
	size_t next = 0;
	uint64_t seen = 0;
	for (size_t group = 0; group < kGroups && next < ranks.size(); ++group) {
		if (seen + group_counts_[group] < ranks[next]) {
			seen += group_counts_[group];
			continue;
		}
		for (size_t bucket = group * kSubBuckets; bucket < (group + 1) * kSubBuckets; ++bucket) {
			seen += counts_[bucket];
			while (next < ranks.size() && seen >= ranks[next])
				*out[next++] = std::min(bucket_top(bucket), max_);
		}
	}
	return summary;
}

void LatenessHistogram::clear()
{
	counts_.fill(0);
	group_counts_.fill(0);
	samples_ = 0;
	max_ = 0;
}

}  // namespace kairos::outsourcing
