// GuestMemory: the guest's RAM, and the one bounds-checked way to touch it.
//
// Guest memory is hostile: the guest may change it at any moment. Host code
// reads it by copying (read<T>) and never keeps pointers into it that a
// guest-supplied address chose without checking here first.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "base/guest_ram.h"
#include "base/mapping.h"

namespace kairos::vmm {

struct MemoryRegion {
	uint64_t gpa;
	Mapping mapping;

	uint64_t size() const { return mapping.size(); }
	uint64_t end() const { return gpa + mapping.size(); }
};

class GuestMemory : public GuestRam {
public:
	// RAM of ram_size bytes starting at 0, split around the 32-bit MMIO gap
	// (layout::kMmioGapStart..kMmioGapEnd) when it is larger than the gap start.
	static Result<GuestMemory> create(uint64_t ram_size);

	const std::vector<MemoryRegion> &regions() const { return regions_; }
	uint64_t ram_size() const { return ram_size_; }

	// Is [gpa, gpa + length) entirely inside one RAM region?
	bool contains(uint64_t gpa, uint64_t length) const;

	// A host view of [gpa, gpa + length), or an error naming the range.
	Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t length) const override;
	std::vector<Range> ranges() const override;

	Status write_bytes(uint64_t gpa, std::span<const uint8_t> bytes) const;
	Status read_bytes(uint64_t gpa, std::span<uint8_t> bytes) const;

	template <typename T>
	Result<T> read(uint64_t gpa) const
	{
		static_assert(std::is_trivially_copyable_v<T>);
		T value;
		KAIROS_TRY(read_bytes(gpa, {reinterpret_cast<uint8_t *>(&value), sizeof(T)}));
		return value;
	}

	template <typename T>
	Status write(uint64_t gpa, const T &value) const
	{
		static_assert(std::is_trivially_copyable_v<T>);
		return write_bytes(gpa, {reinterpret_cast<const uint8_t *>(&value), sizeof(T)});
	}

private:
	const MemoryRegion *find(uint64_t gpa, uint64_t length) const;

	std::vector<MemoryRegion> regions_;
	uint64_t ram_size_ = 0;
};

}  // namespace kairos::vmm
