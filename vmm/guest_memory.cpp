#include "vmm/guest_memory.h"

#include "vmm/layout.h"

namespace kairos::vmm {

Result<GuestMemory> GuestMemory::create(uint64_t ram_size)
{
	GuestMemory memory;
	memory.ram_size_ = ram_size;
	uint64_t below_gap = std::min(ram_size, layout::kMmioGapStart);
	auto low = Mapping::anonymous(below_gap, "guest RAM below 3 GiB");
	if (!low)
		return low.error();
	memory.regions_.push_back({0, std::move(*low)});
	if (ram_size > below_gap) {
		auto high = Mapping::anonymous(ram_size - below_gap, "guest RAM above 4 GiB");
		if (!high)
			return high.error();
		memory.regions_.push_back({layout::kMmioGapEnd, std::move(*high)});
	}
	return memory;
}

const MemoryRegion *GuestMemory::find(uint64_t gpa, uint64_t length) const
{
	for (const auto &region : regions_) {
		// Written so that no sum can wrap: a guest may pass gpa near 2^64.
		if (gpa >= region.gpa && gpa - region.gpa <= region.size() &&
		    length <= region.size() - (gpa - region.gpa))
			return &region;
	}
	return nullptr;
}

bool GuestMemory::contains(uint64_t gpa, uint64_t length) const
{
	return find(gpa, length) != nullptr;
}

std::vector<GuestRam::Range> GuestMemory::ranges() const
{
	std::vector<Range> out;
	for (const auto &region : regions_)
		out.push_back({region.gpa, region.size()});
	return out;
}

Result<std::span<uint8_t>> GuestMemory::slice(uint64_t gpa, uint64_t length) const
{
	const MemoryRegion *region = find(gpa, length);
	if (!region)
		return make_error("guest range {:#x}+{:#x} is outside guest RAM", gpa, length);
	return std::span<uint8_t>(region->mapping.data() + (gpa - region->gpa), length);
}

Status GuestMemory::write_bytes(uint64_t gpa, std::span<const uint8_t> bytes) const
{
	auto target = slice(gpa, bytes.size());
	if (!target)
		return target.error();
	std::memcpy(target->data(), bytes.data(), bytes.size());
	return {};
}

Status GuestMemory::read_bytes(uint64_t gpa, std::span<uint8_t> bytes) const
{
	auto source = slice(gpa, bytes.size());
	if (!source)
		return source.error();
	std::memcpy(bytes.data(), source->data(), bytes.size());
	return {};
}

}  // namespace kairos::vmm
