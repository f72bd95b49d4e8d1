#include "devices/virtio/vsock.h"

#include "base/error.h"

namespace kairos::devices::virtio {

// Placeholder until the device lands (issue 10): refused, never silent.
Result<std::shared_ptr<VirtioDevice>> open_vsock(const GuestRam &, const VsockOptions &)
{
	return make_error("virtio-vsock is not built yet");
}

}  // namespace kairos::devices::virtio
