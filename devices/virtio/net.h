// Net: a virtio-net device (virtio 1.2 section 5.1) on a host TAP
// interface, opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR so frames carry
// the virtio_net_hdr both ways and offloads pass through untouched.
//
// Queues: 0 receive, 1 transmit (no control queue, no multiqueue). Offers
// VERSION_1, EVENT_IDX, INDIRECT_DESC, MAC, MRG_RXBUF, CSUM and
// GUEST_CSUM, HOST_TSO4/6 and GUEST_TSO4/6; what the driver acks decides
// the TAP's TUNSETOFFLOAD (tap_offloads).
// Served on the device's own thread; the TAP fd is read only when the
// receive queue has buffers (no frame is read that cannot be delivered).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/guest_ram.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

inline constexpr uint32_t kDeviceTypeNet = 1;

struct NetOptions {
	std::string id;   // for messages and stats
	std::string tap;  // an existing TAP interface's name (or a new one, with CAP_NET_ADMIN)
	// nullopt: a locally administered unicast address is generated.
	std::optional<std::array<uint8_t, 6>> mac;
};

// The address of a device without `mac`: locally administered unicast
// (IEEE 802: bit 1 of the first byte set, bit 0 clear), a hash of the id
// and the TAP's name, so the same config gives the guest the same address
// on every boot.
std::array<uint8_t, 6> generated_mac(const NetOptions &options);

// The TAP's offloads (TUN_F_*, for TUNSETOFFLOAD) for the features the
// driver acked: the TAP may hand the guest frames with partial checksums
// only with GUEST_CSUM, and GSO frames only with GUEST_TSO4/6 besides
// (virtio 1.2 section 5.1.3.1, feature dependencies).
unsigned tap_offloads(uint64_t acked);

// Opens the TAP (/dev/net/tun, TUNSETIFF) and sets its vnet header size;
// the error names the interface and why (no /dev/net/tun, no such
// interface and no right to create it, busy, not a TAP). Does not start
// the thread (VirtioDevice::start).
Result<std::shared_ptr<VirtioDevice>> open_net(const GuestRam &ram, const NetOptions &options);

}  // namespace kairos::devices::virtio
