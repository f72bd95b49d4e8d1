#include "vmm/guest_areas.h"

namespace kairos::vmm {

int32_t GuestAreas::add(GuestArea area, uint64_t pfn, uint64_t pages, std::span<uint8_t> *view)
{
	const uint64_t max_pages = area == GuestArea::SharedInfo ? 1 : kMaxRingPages;
	if (pages == 0 || pages > max_pages || pfn == 0)
		return KAIROS_EINVAL;  // page 0 holds the real-mode IVT/BIOS data: never ours
	// pfn * 4096 and the end must not wrap: compare before multiplying.
	if (pfn > (UINT64_MAX / KAIROS_PAGE_SIZE) - pages)
		return KAIROS_ERANGE;
	const uint64_t gpa = pfn * KAIROS_PAGE_SIZE;
	const uint64_t size = pages * KAIROS_PAGE_SIZE;
	auto host = memory_.slice(gpa, size);
	if (!host)
		return KAIROS_ERANGE;

	std::lock_guard lock(mutex_);
	for (const auto &[other, range] : areas_) {
		if (other == area)
			continue;
		if (gpa < range.gpa + range.size && range.gpa < gpa + size)
			return KAIROS_EBUSY;
	}
	areas_[area] = {gpa, size};
	*view = *host;
	return KAIROS_OK;
}

int32_t GuestAreas::remove(GuestArea area)
{
	std::lock_guard lock(mutex_);
	return areas_.erase(area) ? KAIROS_OK : KAIROS_ENOENT;
}

bool GuestAreas::registered(GuestArea area) const
{
	std::lock_guard lock(mutex_);
	return areas_.count(area) != 0;
}

uint64_t GuestAreas::gpa_of(GuestArea area) const
{
	std::lock_guard lock(mutex_);
	auto it = areas_.find(area);
	return it == areas_.end() ? 0 : it->second.gpa;
}

}  // namespace kairos::vmm
