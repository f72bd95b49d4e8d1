// GuestAreas: the guest memory ranges a guest has registered with us (the
// shared-info page, VMRPC ring pages). Every guest-supplied address is
// checked here before the host maps it: inside RAM, page-aligned, no
// wrap-around, not overlapping another registered area.
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

class GuestAreas {
public:
	explicit GuestAreas(const GuestMemory &memory) : memory_(memory) {}

	// Registers pages [pfn, pfn + pages) as `area`, replacing an earlier
	// registration of the same area. Returns KAIROS_OK or a KAIROS_E* code;
	// on success *view is the host view of the range.
	int32_t add(GuestArea area, uint64_t pfn, uint64_t pages, std::span<uint8_t> *view);
	int32_t remove(GuestArea area);
	bool registered(GuestArea area) const;
	uint64_t gpa_of(GuestArea area) const;

private:
	struct Range {
		uint64_t gpa;
		uint64_t size;
	};
	const GuestMemory &memory_;
	mutable std::mutex mutex_;
	std::map<GuestArea, Range> areas_;
};

inline constexpr uint64_t kMaxRingPages = 64;

}  // namespace kairos::vmm
