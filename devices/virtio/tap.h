// Tap: a host TAP interface as a virtio-net device's frame endpoint
// (Documentation/networking/tuntap.rst): every read and write is one
// Ethernet frame led by a 12-byte virtio_net_hdr_v1 (IFF_VNET_HDR,
// TUNSETVNETHDRSZ), so offloads pass between the guest and the host stack
// without Kairos looking inside the frames.
#pragma once

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace kairos::devices::virtio {

// Attaches to the TAP interface `name` (IFF_TAP | IFF_NO_PI |
// IFF_VNET_HDR, non-blocking), or creates a non-persistent one when it does
// not exist and the process may (CAP_NET_ADMIN). The error is one line
// naming the interface and the cause, for "network[0].tap: " to lead.
Result<UniqueFd> open_tap(const std::string &name);

// TUNSETOFFLOAD: which offloads (TUN_F_*) the TAP may leave to the frames'
// reader, i.e. the guest. Called on the device's thread after feature
// negotiation (the vCPU thread that activates may not ioctl).
Status set_tap_offload(int tap, unsigned offloads);

}  // namespace kairos::devices::virtio
