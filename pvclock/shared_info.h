// SharedInfo: the host's writer of a guest-registered kairos_shared_info
// page (see abi/kairos_abi.h).
//
// The page is guest memory: the guest may scribble on it at any time. The
// host therefore only ever stores into it (and does atomic read-modify-write
// on event bits); the few values it reads back (masks) only decide whether
// to send an interrupt, so garbage there can at worst cost the guest its
// own events.
#pragma once

#include <cstdint>
#include <span>

#include "abi/kairos_abi.h"
#include "pvclock/time_scale.h"

namespace kairos::pvclock {

struct TimeRecord {
	uint64_t tsc_timestamp;  // guest TSC at system_time
	uint64_t system_time;    // host CLOCK_MONOTONIC, ns
	TimeScale scale;
	uint8_t flags;
};

class SharedInfo {
public:
	// page must be the host view of exactly one validated, registered page.
	SharedInfo(std::span<uint8_t> page, uint32_t vcpu_count);

	// Writes the header fields the host owns.
	void initialise();
	// Seqlocked (pvclock version protocol): odd while writing.
	void publish_time(uint32_t vcpu, const TimeRecord &record);
	void publish_wall_clock(uint64_t seconds, uint32_t nanoseconds);
	void publish_stolen(uint32_t vcpu, uint64_t stolen_ns);
	void count_publish();

	// The event bit operations of DESIGN.md section 3, on the page.
	// Sets pending[port]; returns true if the guest must get an upcall now
	// (unmasked, upcall not already pending, upcall_mask clear).
	bool raise(uint32_t port);

	kairos_shared_info *raw() const { return info_; }

private:
	kairos_shared_info *info_;
	uint32_t vcpu_count_;
};

// The reader's side of the protocol, as the guest module implements it;
// used by tests and by host code that wants to read back what it published.
TimeRecord read_time(const kairos_shared_info &info, uint32_t vcpu);
// System time at guest TSC value `tsc` from a record.
uint64_t system_time_at(const TimeRecord &record, uint64_t tsc);

}  // namespace kairos::pvclock
