#include "devices/virtio/net.h"

#include "base/error.h"

namespace kairos::devices::virtio {

// Placeholder until the device lands (issue 10): refused, never silent.
Result<std::shared_ptr<VirtioDevice>> open_net(const GuestRam &, const NetOptions &options)
{
	return make_error("virtio-net ({}) is not built yet", options.id);
}

}  // namespace kairos::devices::virtio
