// VirtioDevices: the VM's virtio-mmio devices (issue 10), wired from
// config.drives (virtio-blk), config.network (virtio-net) and config.vsock
// (virtio-vsock), in that order: the n-th is in slot n of the layout's
// virtio-mmio window (layout::kVirtioMmioBase), with the interrupt
// layout::kVirtioMmioFirstGsi + n, as the DSDT describes them (vmm/acpi.h).
//
// The fast paths avoid exits (DESIGN.md 1): a QueueNotify write of queue q
// signals the device's notify_fd(q) through KVM_IOEVENTFD (datamatch q),
// and the transport raises the interrupt as an edge on the GSI, injected
// by the raising thread itself with KVM_IRQ_LINE (as kvmtool does for
// virtio-mmio): an irqfd on an IOAPIC line would be injected from KVM's
// workqueue, one more normal-priority thread that waits behind the host's
// load (vmm/paravirt.cpp pulse_upcall). Every other register access exits
// to the MMIO bus. Each device serves its queues on its own thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/guest_ram.h"
#include "base/result.h"
#include "devices/bus.h"
#include "devices/virtio/block.h"
#include "devices/virtio/device.h"
#include "devices/virtio/mmio_transport.h"
#include "vmm/config.h"
#include "vmm/confinement.h"
#include "vmm/kvm.h"

namespace kairos::vmm {

// One device's counters, for --stats ("devices").
struct VirtioDeviceReport {
	std::string id;    // the drive's or network device's id, or "vsock"
	std::string type;  // "virtio-blk", "virtio-net", "virtio-vsock"
	devices::virtio::DeviceStats stats;
};

// Opens each device's host side as the device will (a drive's image:
// exists, a regular file or block device, size a multiple of 512, the flock
// free; a network device's TAP; vhost-vsock and its cid): the preflight's
// check (exit 2) before KVM is touched. The TAPs and vhost-vsock are let
// go again; the drives' images are returned open and locked, in
// config.drives order, for VirtioDevices::create, so that no other VM can
// take a lock between the check and the run. The error names the key:
// "drives[0].path: /x.img: no such file".
Result<std::vector<devices::virtio::BlockImage>> preflight_virtio_devices(const Config &config);

// preflight_virtio_devices, every device let go again (`kairos check`).
Status check_virtio_devices(const Config &config);

class VirtioDevices {
public:
	VirtioDevices() = default;  // no devices
	VirtioDevices(VirtioDevices &&) = default;
	VirtioDevices &operator=(VirtioDevices &&other);
	~VirtioDevices();

	// Opens every device of `config` on `ram` (the drives on `drives`,
	// preflight_virtio_devices's images), puts its transport on
	// `mmio_bus` at its slot, registers its notify ioeventfds with `vm`
	// and gives it its interrupt line on `vm` (which must outlive the
	// devices; a lost interrupt is logged to `log`). No thread runs yet.
	// Errors name the drive.
	static Result<VirtioDevices> create(const Config &config, std::vector<devices::virtio::BlockImage> drives,
					    const GuestRam &ram, const VmFd &vm, devices::Bus &mmio_bus,
					    const Logger &log);

	// Starts each device's thread, named kairos-blk-ID, kairos-net-ID or
	// kairos-vsock and confined as ThreadKind::Device. Before
	// the vCPUs run, so no notification waits for a thread.
	Status start(const Confinement &confinement);
	// Stops and joins every device's thread; idempotent. Before guest
	// memory goes away (the destructor calls it too).
	void stop();

	std::vector<VirtioDeviceReport> stats() const;
	size_t size() const { return slots_.size(); }

private:
	struct Slot {
		std::string id;
		std::string label;  // the thread's name
		std::shared_ptr<devices::virtio::VirtioDevice> device;
		std::shared_ptr<devices::virtio::MmioTransport> transport;
		// Shared with the transport's raise_interrupt, which the bus may
		// still call while the slot goes away.
		std::shared_ptr<KvmIrqLine> interrupt;
	};
	std::vector<Slot> slots_;
};

}  // namespace kairos::vmm
