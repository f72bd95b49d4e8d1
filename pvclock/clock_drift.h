// ClockDrift: how fast a guest clock runs against the host's, from pairs of
// (host CLOCK_MONOTONIC, guest clock) readings taken at the same instant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kairos::pvclock {

struct ClockSample {
	uint64_t host_ns;           // host CLOCK_MONOTONIC when the sample arrived
	uint64_t guest_ns;          // the guest's reading
	uint64_t host_realtime_ns;  // host CLOCK_REALTIME at the same moment
};

struct DriftSummary {
	size_t samples = 0;
	double span_s = 0;            // host time from first to last sample
	double drift_ppm = 0;         // least-squares slope of (guest - host): us per s
	double end_to_end_us = 0;     // (guest - host) at the last sample minus at the first
	double max_deviation_us = 0;  // worst distance from the fitted line (jitter)
	// The same slope fitted to the upper envelope: the largest (guest - host)
	// in each of kEnvelopeWindows equal spans of host time. Reading latency
	// (a vCPU preempted between its clock read and the sample exit) only
	// makes the host's stamp later, i.e. (guest - host) smaller, so the
	// envelope follows the true offset and ignores latency spikes.
	double envelope_drift_ppm = 0;
	// For samples of a guest CLOCK_REALTIME: guest minus host wall clock,
	// the largest over all samples (least delayed), in ms.
	double realtime_offset_ms = 0;
};

inline constexpr size_t kEnvelopeWindows = 10;

DriftSummary summarise_drift(const std::vector<ClockSample> &samples);

}  // namespace kairos::pvclock
