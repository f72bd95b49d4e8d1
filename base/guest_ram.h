// GuestRam: the one way code below vmm/ reaches guest memory (virtqueues,
// device buffers). vmm::GuestMemory implements it; tests implement it on a
// plain buffer. Guest memory is hostile: a view is valid only for the range
// checked here, and its contents may change under the reader at any time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace kairos {

class GuestRam {
public:
	virtual ~GuestRam() = default;
	// A host view of [gpa, gpa + length), or an error naming the range
	// when any of it is outside guest RAM (or wraps around).
	virtual Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t length) const = 0;

	// Every RAM range [gpa, gpa + size), ascending, for a kernel that maps
	// guest memory itself (vhost's VHOST_SET_MEM_TABLE takes each range's
	// host address from slice(gpa, size)).
	struct Range {
		uint64_t gpa;
		uint64_t size;
	};
	virtual std::vector<Range> ranges() const = 0;
};

}  // namespace kairos
