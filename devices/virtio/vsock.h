// Vsock: a virtio-vsock device (virtio 1.2 section 5.10) whose data path
// is the host kernel's vhost-vsock (/dev/vhost-vsock, module vhost_vsock),
// so host programs reach the guest with AF_VSOCK at its context id.
//
// Queues: 0 receive and 1 transmit are handed to vhost (the ring addresses
// through VHOST_SET_VRING_*, guest memory through VHOST_SET_MEM_TABLE, the
// queue's notify_fd as the kick); 2 is the event queue, kept here and never
// used (no transport reset events are sent). vhost's call eventfds are
// read on the device's thread, which raises the transport's interrupt:
// virtio-mmio's InterruptStatus must be set before the guest sees the
// edge (section 4.2.2), so a call cannot go straight to KVM_IRQFD.
// Every vhost ioctl after open runs on the device's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/guest_ram.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

inline constexpr uint32_t kDeviceTypeVsock = 19;

struct VsockOptions {
	uint32_t guest_cid = 0;  // 3..0xfffffffe
	// vhost's memory table: every RAM range of the guest (gpa, size).
	struct RamRange {
		uint64_t gpa;
		uint64_t size;
	};
	std::vector<RamRange> ram;
};

// Opens /dev/vhost-vsock, takes ownership (VHOST_SET_OWNER) and claims the
// cid (VHOST_VSOCK_SET_GUEST_CID). Errors are one line: the device is
// missing ("load the vhost_vsock module"), not permitted, or the cid is
// taken by another VM (EADDRINUSE). Does not start the thread.
Result<std::shared_ptr<VirtioDevice>> open_vsock(const GuestRam &ram, const VsockOptions &options);

}  // namespace kairos::devices::virtio
