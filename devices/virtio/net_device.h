// The virtio-net device core on any frame descriptor (internal to
// devices/virtio and its tests): open_net gives it a TAP; unit tests give
// it one end of a SOCK_SEQPACKET socketpair, which keeps frame boundaries
// as a TAP does, so the queues are tested without CAP_NET_ADMIN.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/guest_ram.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

// Section 5.1.6: struct virtio_net_hdr_v1, which leads every frame both
// ways (VERSION_1: num_buffers is always there).
struct NetHeader {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
static_assert(sizeof(NetHeader) == 12);

// Feature bits (section 5.1.3).
inline constexpr uint64_t kNetCsum = 1ULL << 0;       // VIRTIO_NET_F_CSUM
inline constexpr uint64_t kNetGuestCsum = 1ULL << 1;  // VIRTIO_NET_F_GUEST_CSUM
inline constexpr uint64_t kNetMac = 1ULL << 5;        // VIRTIO_NET_F_MAC
inline constexpr uint64_t kNetGuestTso4 = 1ULL << 7;  // VIRTIO_NET_F_GUEST_TSO4
inline constexpr uint64_t kNetGuestTso6 = 1ULL << 8;  // VIRTIO_NET_F_GUEST_TSO6
inline constexpr uint64_t kNetHostTso4 = 1ULL << 11;  // VIRTIO_NET_F_HOST_TSO4
inline constexpr uint64_t kNetHostTso6 = 1ULL << 12;  // VIRTIO_NET_F_HOST_TSO6
inline constexpr uint64_t kNetMrgRxbuf = 1ULL << 15;  // VIRTIO_NET_F_MRG_RXBUF
inline constexpr uint64_t kNetStatus = 1ULL << 16;    // VIRTIO_NET_F_STATUS

// The largest frame either way: the header and a 64 KiB GSO frame with its
// Ethernet and VLAN headers (what Linux's virtio_net posts per buffer
// without MRG_RXBUF when it takes TSO).
inline constexpr size_t kMaxFrameBytes = sizeof(NetHeader) + 65535 + 14 + 4;

enum class FrameEndpoint {
	Tap,     // TUNSETOFFLOAD follows the driver's GUEST_* features
	Packets  // a packet socket or socketpair: no offload to set
};

// Takes `frames` (non-blocking, one frame per read and write).
Result<std::shared_ptr<VirtioDevice>> make_net_device(const GuestRam &ram, std::string id, std::array<uint8_t, 6> mac,
						      UniqueFd frames, FrameEndpoint endpoint);

}  // namespace kairos::devices::virtio
