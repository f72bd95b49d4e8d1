// Bus: maps port or MMIO address ranges to devices (after kvmtool's ioport
// registry and crosvm's Bus). vCPU threads dispatch exits here; devices see
// only an offset into their own range, never KVM.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "base/result.h"

namespace kairos::devices {

class BusDevice {
public:
	virtual ~BusDevice() = default;
	virtual std::string name() const = 0;
	// offset is relative to the base the device was registered at.
	virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
	virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
public:
	// Fails when [base, base + length) overlaps a registered range.
	Status add(uint64_t base, uint64_t length, std::shared_ptr<BusDevice> device);

	// Returns false when no device claims the address: reads then see all
	// ones (an empty ISA/PCI bus floats high) and writes are dropped.
	bool read(uint64_t address, std::span<uint8_t> data) const;
	bool write(uint64_t address, std::span<const uint8_t> data) const;

	uint64_t unclaimed_accesses() const { return unclaimed_.load(std::memory_order_relaxed); }

private:
	struct Range {
		uint64_t length;
		std::shared_ptr<BusDevice> device;
	};
	// Finds the device whose range holds address, and the offset into it.
	BusDevice *find(uint64_t address, uint64_t *offset) const;

	std::map<uint64_t, Range> ranges_;            // keyed by base; written before vCPUs start
	mutable std::atomic<uint64_t> unclaimed_{0};  // statistics only
};

}  // namespace kairos::devices
