#include "pvclock/clock_drift.h"

#include <algorithm>
#include <cmath>

namespace kairos::pvclock {

DriftSummary summarise_drift(const std::vector<ClockSample> &samples)
{
	DriftSummary summary;
	summary.samples = samples.size();
	if (samples.size() < 2)
		return summary;
	// Offsets relative to the first sample keep the numbers small enough
	// for doubles to hold nanoseconds exactly over hours.
	const ClockSample &first = samples.front();
	std::vector<double> x;  // host seconds since first
	std::vector<double> y;  // offset change in us
	for (const auto &sample : samples) {
		double host = static_cast<double>(static_cast<int64_t>(sample.host_ns - first.host_ns));
		double guest = static_cast<double>(static_cast<int64_t>(sample.guest_ns - first.guest_ns));
		x.push_back(host / 1e9);
		y.push_back((guest - host) / 1e3);
	}
	double n = static_cast<double>(x.size());
	double mean_x = 0, mean_y = 0;
	for (size_t i = 0; i < x.size(); ++i) {
		mean_x += x[i] / n;
		mean_y += y[i] / n;
	}
	double sxx = 0, sxy = 0;
	for (size_t i = 0; i < x.size(); ++i) {
		sxx += (x[i] - mean_x) * (x[i] - mean_x);
		sxy += (x[i] - mean_x) * (y[i] - mean_y);
	}
	summary.span_s = x.back();
	summary.drift_ppm = sxx > 0 ? sxy / sxx : 0;
	summary.end_to_end_us = y.back() - y.front();
	double intercept = mean_y - summary.drift_ppm * mean_x;
	for (size_t i = 0; i < x.size(); ++i)
		summary.max_deviation_us =
			std::max(summary.max_deviation_us, std::abs(y[i] - (intercept + summary.drift_ppm * x[i])));
	return summary;
}

} // namespace kairos::pvclock
