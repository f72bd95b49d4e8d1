// MmioTransport: the virtio-mmio register block of one device (virtio 1.2
// section 4.2.2, version 2 registers only; no legacy interface), as a bus
// device on the MMIO bus. vCPU threads read and write it; it keeps the
// device status state machine (section 3.1.1) and hands the queues to the
// device at DRIVER_OK.
//
// The guest is untrusted: bad register values (queue size not a power of
// 2 or above the maximum, QueueSel out of range, features not offered,
// FEATURES_OK without VERSION_1) are refused as the spec says, never a
// crash; accesses that are not 32-bit wide (except config space) are
// ignored.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

class MmioTransport : public BusDevice, private Interrupt {
public:
	// The register block's size on the bus (one page per device).
	static constexpr uint64_t kSize = 0x1000;
	// QueueNotify's offset, for KVM_IOEVENTFD on base + kQueueNotifyOffset.
	static constexpr uint64_t kQueueNotifyOffset = 0x50;

	// `raise_interrupt` pulses the device's interrupt line once (in a VM:
	// KVM_IRQ_LINE high then low, vmm/virtio_devices.h); called from the
	// device's thread, from vCPU threads and at teardown.
	MmioTransport(std::shared_ptr<VirtioDevice> device, std::function<void()> raise_interrupt);
	// Resets the device: it keeps a reference to this as its Interrupt.
	~MmioTransport() override;

	std::string name() const override;
	void read(uint64_t offset, std::span<uint8_t> data) override;
	void write(uint64_t offset, std::span<const uint8_t> data) override;

	// The Status register (section 2.1), for tests and stats.
	uint32_t status() const;
	VirtioDevice &device() const { return *device_; }
	// Why the device last refused DRIVER_OK (activate's error), empty if
	// it did not since the last reset: for the VMM's log.
	std::string last_error() const;

private:
	void used_buffers() override;
	void needs_reset() override;

	// Helpers called with mutex_ held.
	void reset_registers();
	uint32_t read_register(uint64_t offset) const;
	// The selected queue while its registers may be written, else null.
	QueueConfig *writable_queue();
	// Takes lifecycle_mutex_, then mutex_ (lock order in the .cpp).
	void write_status(uint32_t value);

	std::shared_ptr<VirtioDevice> device_;
	std::function<void()> raise_interrupt_;
	// Serializes Status writes, across the device's activate and reset.
	std::mutex lifecycle_mutex_;
	mutable std::mutex mutex_;
	std::string last_error_;
	// Register state, under mutex_ (the implementation adds what it needs).
	uint32_t status_ = 0;
	uint32_t interrupt_status_ = 0;
	uint32_t device_features_sel_ = 0;
	uint32_t driver_features_sel_ = 0;
	uint64_t driver_features_ = 0;
	uint32_t queue_sel_ = 0;
	uint32_t config_generation_ = 0;
	std::vector<QueueConfig> queues_;
	std::vector<bool> queue_ready_;
};

}  // namespace kairos::devices::virtio
