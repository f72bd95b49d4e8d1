// GuestAreas: the guest memory ranges a guest has registered with us (the
// shared-info page, VMRPC ring pages). Every guest-supplied address is
// checked here before the host maps it: inside RAM, page-aligned, no
// wrap-around, not overlapping another registered area.
//
// It is also guest RAM as the devices see it (a GuestRam): RAM minus the
// registered pages. A virtqueue or buffer overlapping the shared-info page
// or the VMRPC ring is refused like one outside RAM (issue 10), so a
// device can never be made to write the pages the host itself publishes
// or reads commands from.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>

#include "abi/kairos_abi.h"
#include "vmm/guest_memory.h"

namespace kairos::vmm {

enum class GuestArea { SharedInfo, Ring };

class GuestAreas : public GuestRam {
public:
	explicit GuestAreas(const GuestMemory &memory) : memory_(memory) {}

	// GuestRam for devices: the view, or an error when [gpa, gpa + length)
	// is outside RAM or overlaps a registered area (it names which).
	Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t length) const override;
	std::vector<Range> ranges() const override { return memory_.ranges(); }

	// Registers pages [pfn, pfn + pages) as `area`, replacing an earlier
	// registration of the same area. Returns KAIROS_OK or a KAIROS_E* code;
	// on success *view is the host view of the range.
	int32_t add(GuestArea area, uint64_t pfn, uint64_t pages, std::span<uint8_t> *view);
	int32_t remove(GuestArea area);
	bool registered(GuestArea area) const;
	uint64_t gpa_of(GuestArea area) const;

private:
	const GuestMemory &memory_;
	mutable std::mutex mutex_;
	std::map<GuestArea, Range> areas_;  // GuestRam::Range
};

inline constexpr uint64_t kMaxRingPages = 64;

}  // namespace kairos::vmm
