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
	++counts_[bucket_of(lateness_ns)];
	++samples_;
	max_ = std::max(max_, lateness_ns);
}

uint64_t LatenessHistogram::percentile(uint32_t per_mille) const
{
	if (samples_ == 0)
		return 0;
	// The rank of the sample at this percentile, rounded up, at least 1.
	uint64_t rank = std::max<uint64_t>(1, (samples_ * per_mille + 999) / 1000);
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
	return {samples_, percentile(500), percentile(900), percentile(990), percentile(999), max_};
}

void LatenessHistogram::clear()
{
	counts_.fill(0);
	samples_ = 0;
	max_ = 0;
}

}  // namespace kairos::outsourcing
