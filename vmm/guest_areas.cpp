#include "vmm/guest_areas.h"

#include "base/error.h"

namespace kairos::vmm {
namespace {

const char *area_name(GuestArea area)
{
	return area == GuestArea::SharedInfo ? "the shared-info page" : "the VMRPC ring";
}

}  // namespace

Result<std::span<uint8_t>> GuestAreas::slice(uint64_t gpa, uint64_t length) const
{
	KAIROS_TRY_ASSIGN(view, memory_.slice(gpa, length));  // in RAM, no wrap-around
	std::lock_guard lock(mutex_);
	for (const auto &[area, range] : areas_)
		if (gpa < range.gpa + range.size && range.gpa < gpa + length)
			return make_error("guest range {:#x}+{:#x} overlaps {} the guest registered at {:#x}", gpa,
					  length, area_name(area), range.gpa);
	return view;
}

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
