#include "devices/virtio/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "devices/virtio/net_device.h"

namespace kairos::devices::virtio {

namespace {

// Whether /sys/class/net/NAME exists: tells "not allowed to create" from
// "not allowed to attach" when TUNSETIFF says EPERM.
bool interface_exists(const std::string &name)
{
	const std::string path = "/sys/class/net/" + name;
	return access(path.c_str(), F_OK) == 0;
}

Error tap_error(const std::string &name, const std::string &why)
{
	return make_error("{}: {}", name, why);
}

std::string tunsetiff_cause(const std::string &name, int error)
{
	switch (error) {
	case EPERM:
		if (interface_exists(name))
			return "not allowed to attach (the TAP belongs to another user or group: ip tuntap add dev " +
			       name + " mode tap user $USER)";
		return "no such TAP interface and no right to create one (CAP_NET_ADMIN)";
	case EBUSY:
		return "busy (another process has it open, and it is not multi-queue)";
	case EINVAL:
		return "not a TAP interface (a TUN, or a TAP made with other flags)";
	default:
		return fmt::format("TUNSETIFF: {}", strerror(error));
	}
}

}  // namespace

Result<UniqueFd> open_tap(const std::string &name)
{
	if (name.empty() || name.size() >= IFNAMSIZ)
		return tap_error(name, fmt::format("not an interface name (1 to {} characters)", IFNAMSIZ - 1));
	UniqueFd tun(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
	if (!tun) {
		const int saved = errno;
		if (saved == ENOENT || saved == ENODEV)
			return tap_error(name, "no /dev/net/tun (is the tun module loaded?)");
		return tap_error(name, fmt::format("/dev/net/tun: {}", strerror(saved)));
	}
	ifreq request = {};
	std::memcpy(request.ifr_name, name.data(), name.size());
	request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(tun.get(), TUNSETIFF, &request) != 0)
		return tap_error(name, tunsetiff_cause(name, errno));
	// Section 5.1.6: with VERSION_1 the header always has num_buffers.
	int header_size = sizeof(NetHeader);
	if (ioctl(tun.get(), TUNSETVNETHDRSZ, &header_size) != 0)
		return tap_error(name, fmt::format("TUNSETVNETHDRSZ {}: {}", header_size, strerror(errno)));
	return tun;
}

Status set_tap_offload(int tap, unsigned offloads)
{
	if (ioctl(tap, TUNSETOFFLOAD, offloads) != 0)
		return errno_error(fmt::format("TUNSETOFFLOAD {:#x}", offloads));
	return {};
}

}  // namespace kairos::devices::virtio
