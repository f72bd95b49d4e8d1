#include "pvclock/clock_drift.h"

#include <algorithm>
#include <cmath>

namespace kairos::pvclock {

namespace {

// Least-squares slope of y over x.
double slope(const std::vector<double> &x, const std::vector<double> &y, double *intercept = nullptr)
{
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
	double result = sxx > 0 ? sxy / sxx : 0;
	if (intercept)
		*intercept = mean_y - result * mean_x;
	return result;
}

double envelope_slope(const std::vector<double> &x, const std::vector<double> &y)
{
	std::vector<double> window_x(kEnvelopeWindows, 0);
	std::vector<double> window_y(kEnvelopeWindows, -1e300);
	const double span = x.back() > 0 ? x.back() : 1;
	for (size_t i = 0; i < x.size(); ++i) {
		auto w = std::min(kEnvelopeWindows - 1, static_cast<size_t>(x[i] / span * kEnvelopeWindows));
		if (y[i] > window_y[w]) {
			window_y[w] = y[i];
			window_x[w] = x[i];
		}
	}
	std::vector<double> ex, ey;
	for (size_t w = 0; w < kEnvelopeWindows; ++w) {
		if (window_y[w] > -1e300) {
			ex.push_back(window_x[w]);
			ey.push_back(window_y[w]);
		}
	}
	return ex.size() >= 2 ? slope(ex, ey) : 0;
}

}  // namespace

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
	double intercept = 0;
	summary.span_s = x.back();
	summary.drift_ppm = slope(x, y, &intercept);
	summary.end_to_end_us = y.back() - y.front();
	summary.envelope_drift_ppm = envelope_slope(x, y);
	double best = -1e300;
	for (const auto &sample : samples)
		best = std::max(best,
				static_cast<double>(static_cast<int64_t>(sample.guest_ns - sample.host_realtime_ns)) /
					1e6);
	summary.realtime_offset_ms = best;
	for (size_t i = 0; i < x.size(); ++i)
		summary.max_deviation_us =
			std::max(summary.max_deviation_us, std::abs(y[i] - (intercept + summary.drift_ppm * x[i])));
	return summary;
}

}  // namespace kairos::pvclock
