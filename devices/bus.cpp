#include "devices/bus.h"

#include <algorithm>

#include "base/error.h"

namespace kairos::devices {

Status Bus::add(uint64_t base, uint64_t length, std::shared_ptr<BusDevice> device)
{
	if (length == 0 || base + length < base)
		return make_error("bus range for {} at {:#x} has bad length {:#x}", device->name(), base, length);
	auto next = ranges_.lower_bound(base);
	if (next != ranges_.end() && next->first < base + length)
		return make_error("{} at {:#x} overlaps {} at {:#x}", device->name(), base, next->second.device->name(),
				  next->first);
	if (next != ranges_.begin()) {
		auto prev = std::prev(next);
		if (prev->first + prev->second.length > base)
			return make_error("{} at {:#x} overlaps {} at {:#x}", device->name(), base,
					  prev->second.device->name(), prev->first);
	}
	ranges_.emplace(base, Range{length, std::move(device)});
	return {};
}

BusDevice *Bus::find(uint64_t address, uint64_t *offset) const
{
	auto it = ranges_.upper_bound(address);
	if (it == ranges_.begin())
		return nullptr;
	--it;
	if (address - it->first >= it->second.length)
		return nullptr;
	*offset = address - it->first;
	return it->second.device.get();
}

bool Bus::read(uint64_t address, std::span<uint8_t> data) const
{
	uint64_t offset = 0;
	BusDevice *device = find(address, &offset);
	if (!device) {
		std::fill(data.begin(), data.end(), 0xff);
		unclaimed_.fetch_add(1, std::memory_order_relaxed);
		return false;
	}
	device->read(offset, data);
	return true;
}

bool Bus::write(uint64_t address, std::span<const uint8_t> data) const
{
	uint64_t offset = 0;
	BusDevice *device = find(address, &offset);
	if (!device) {
		unclaimed_.fetch_add(1, std::memory_order_relaxed);
		return false;
	}
	device->write(offset, data);
	return true;
}

}  // namespace kairos::devices
