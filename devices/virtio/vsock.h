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
#include <span>
#include <string>
#include <vector>

#include "base/guest_ram.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

inline constexpr uint32_t kDeviceTypeVsock = 19;

// Section 5.10.3: VIRTIO_VSOCK_F_SEQPACKET; vhost implements it.
inline constexpr uint64_t kVsockFeatureSeqpacket = 1ULL << 1;

struct VsockOptions {
	uint32_t guest_cid = 0;  // 3..0xfffffffe
	// vhost's memory table: every RAM range of the guest (gpa, size).
	struct RamRange {
		uint64_t gpa;
		uint64_t size;
	};
	std::vector<RamRange> ram;
	// The vhost-vsock character device; another path only in tests.
	std::string device_path = "/dev/vhost-vsock";
};

// The vhost calls the device makes once the guest drives it, behind an
// interface so unit tests check their order, arguments and thread without
// /dev/vhost-vsock. Every call comes from the device's thread.
class VhostVsockBackend {
public:
	virtual ~VhostVsockBackend() = default;

	struct MemoryRegion {
		uint64_t gpa;
		uint64_t size;
		uint64_t host_address;
	};
	struct Vring {
		uint32_t index;
		uint16_t size;
		// Host addresses of the three areas (vhost reads the user mapping).
		uint64_t desc;
		uint64_t avail;
		uint64_t used;
		int kick_fd;  // the queue's notify_fd: guest kicks reach vhost directly
		int call_fd;  // vhost signals it to ask for an interrupt
	};

	virtual Status set_features(uint64_t features) = 0;               // VHOST_SET_FEATURES
	virtual Status set_mem_table(std::span<const MemoryRegion>) = 0;  // VHOST_SET_MEM_TABLE
	// VHOST_SET_VRING_NUM, _BASE (0: a fresh ring), _ADDR, _KICK, _CALL.
	virtual Status set_vring(const Vring &vring) = 0;
	virtual Status set_running(bool running) = 0;  // VHOST_VSOCK_SET_RUNNING
};

// The features offered to the driver: VERSION_1 and, of what vhost
// reports (VHOST_GET_FEATURES), the ring features it implements for the
// rings it serves (EVENT_IDX, INDIRECT_DESC) and SEQPACKET. Never
// ACCESS_PLATFORM: vhost gets guest-physical addresses, not an IOTLB.
uint64_t vsock_features(uint64_t vhost_features);

// Opens /dev/vhost-vsock, takes ownership (VHOST_SET_OWNER) and claims the
// cid (VHOST_VSOCK_SET_GUEST_CID). Errors are one line: the device is
// missing ("load the vhost_vsock module"), not permitted, or the cid is
// taken by another VM (EADDRINUSE). Does not start the thread.
Result<std::shared_ptr<VirtioDevice>> open_vsock(const GuestRam &ram, const VsockOptions &options);

// The device on a backend already opened and owning its cid, which
// reported `vhost_features`: open_vsock's second half, and the tests'.
Result<std::shared_ptr<VirtioDevice>> make_vsock(const GuestRam &ram, const VsockOptions &options,
						 std::unique_ptr<VhostVsockBackend> backend, uint64_t vhost_features);

}  // namespace kairos::devices::virtio
