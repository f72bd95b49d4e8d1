// VirtioDevice: what a virtio device type (block, net, vsock) gives the
// transport (virtio 1.2 sections 2 and 5), after crosvm's VirtioDevice
// trait and Firecracker's devices/virtio/device.rs. The transport (here
// only virtio-mmio, mmio_transport.h) owns the registers and the status
// state machine; the device owns its queues once activated and serves them
// on its own thread, never on a vCPU thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "devices/virtio/virtqueue.h"

namespace kairos::devices::virtio {

// Device ids (section 5), for VirtioDevice::device_type().
inline constexpr uint32_t kDeviceTypeBlock = 2;

// How a device tells the driver something happened. Implemented by the
// transport; callable from the device's thread.
class Interrupt {
public:
	virtual ~Interrupt() = default;
	// Used buffers were published (InterruptStatus bit 0, section 4.2.2).
	virtual void used_buffers() = 0;
	// The device hit an error it cannot recover from: the transport sets
	// DEVICE_NEEDS_RESET and sends a configuration change (section 2.1.2).
	virtual void needs_reset() = 0;
};

// Counters for kairos run --stats; each device fills what applies.
struct DeviceStats {
	uint64_t requests = 0;
	uint64_t bytes_read = 0;     // guest reads (device to driver)
	uint64_t bytes_written = 0;  // guest writes (driver to device)
	uint64_t errors = 0;         // requests failed, and malformed chains
	uint64_t notifications = 0;  // queue notifications received
	uint64_t interrupts = 0;
	uint64_t interrupts_suppressed = 0;  // by EVENT_IDX or NO_INTERRUPT
};

class VirtioDevice {
public:
	virtual ~VirtioDevice() = default;

	// For messages and stats ("virtio-blk rootfs").
	virtual std::string name() const = 0;
	// Section 5: 1 network, 2 block, 19 socket.
	virtual uint32_t device_type() const = 0;
	// Feature bits offered, VERSION_1 included (and EVENT_IDX and
	// INDIRECT_DESC when the device's queues handle them).
	virtual uint64_t features() const = 0;
	virtual uint16_t queue_count() const = 0;
	virtual uint16_t queue_max_size() const = 0;

	// Device configuration space (section 5.x.4); bytes past its end read
	// as zero, writes there are ignored.
	virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
	virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

	// DRIVER_OK: `acked` is what the driver accepted (a subset of
	// features()), `queues` one config per queue (size 0: not set up).
	// An error makes the transport set DEVICE_NEEDS_RESET.
	virtual Status activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt) = 0;
	// The driver wrote 0 to Status: when this returns, the device no
	// longer touches its queues or calls the Interrupt.
	virtual void reset() = 0;

	// An eventfd the device's thread waits on for queue `index`'s
	// notifications, so the VMM can route QueueNotify writes of that index
	// to it with KVM_IOEVENTFD (datamatch) and no exit to user space.
	virtual int notify_fd(uint16_t index) const = 0;
	// QueueNotify written through the bus (no ioeventfd): same effect as
	// a signal of notify_fd(index). From a vCPU thread; never blocks.
	virtual void notify(uint16_t index) = 0;

	// Starts the device's thread; confine_thread (if set) runs on it first
	// (vmm/confinement.h), and an error there stops the start.
	virtual Status start(std::function<Status()> confine_thread) = 0;
	// Stops and joins the thread. Idempotent.
	virtual void stop() = 0;

	virtual DeviceStats stats() const = 0;
};

}  // namespace kairos::devices::virtio
