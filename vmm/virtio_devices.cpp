#include "vmm/virtio_devices.h"

#include <pthread.h>

#include <functional>

#include <fmt/format.h>

#include "base/error.h"
#include "devices/virtio/block.h"
#include "devices/virtio/net.h"
#include "devices/virtio/vsock.h"
#include "vmm/layout.h"

namespace kairos::vmm {
namespace {

namespace virtio = devices::virtio;

// QueueNotify is a 32-bit register whose value is the queue index (virtio
// 1.2 4.2.2): one datamatch ioeventfd per queue.
constexpr uint32_t kQueueNotifyWidth = 4;

// For the preflight's open: it never reaches guest memory.
class NoGuestRam : public GuestRam {
public:
	Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t length) const override
	{
		return make_error("no guest memory yet ({:#x}+{:#x})", gpa, length);
	}
	std::vector<Range> ranges() const override { return {}; }
};

virtio::BlockOptions block_options(const Config::Drive &drive)
{
	virtio::BlockOptions options;
	options.id = drive.id;
	options.path = drive.path.string();
	options.read_only = drive.read_only;
	options.cache = drive.cache == Config::Drive::Cache::None ? virtio::BlockOptions::Cache::None
								  : virtio::BlockOptions::Cache::Writeback;
	return options;
}

virtio::NetOptions net_options(const Config::Network &net)
{
	return {net.id, net.tap, net.mac};
}

virtio::VsockOptions vsock_options(const Config::Vsock &vsock, const GuestRam &ram)
{
	virtio::VsockOptions options;
	options.guest_cid = vsock.cid;
	for (const auto &range : ram.ranges())
		options.ram.push_back({range.gpa, range.size});
	return options;
}

// One used virtio-mmio slot: what the config asked for, in slot order
// (layout.h: drives, network, vsock).
struct SlotPlan {
	std::string key;    // "drives[0]", for errors
	std::string id;     // for stats and the thread's name
	std::string label;  // thread name, kairos-blk-ID
	std::function<Result<std::shared_ptr<virtio::VirtioDevice>>()> open;
};

std::string drive_key(size_t index)
{
	return fmt::format("drives[{}].path", index);
}

// `drives`: the images of config.drives (preflight_virtio_devices), each
// taken by its plan's open.
std::vector<SlotPlan> plan_slots(const Config &config, const GuestRam &ram, std::vector<virtio::BlockImage> &drives)
{
	std::vector<SlotPlan> plans;
	for (size_t index = 0; index < config.drives.size(); ++index) {
		const auto &drive = config.drives[index];
		plans.push_back({drive_key(index), drive.id, "kairos-blk-" + drive.id, [&ram, image = &drives[index]] {
					 return virtio::make_block(ram, std::move(*image));
				 }});
	}
	for (size_t index = 0; index < config.network.size(); ++index) {
		const auto &net = config.network[index];
		plans.push_back({fmt::format("network[{}].tap", index), net.id, "kairos-net-" + net.id,
				 [&ram, &net] { return virtio::open_net(ram, net_options(net)); }});
	}
	if (config.vsock)
		plans.push_back({"vsock", "vsock", "kairos-vsock", [&ram, &config] {
					 return virtio::open_vsock(ram, vsock_options(*config.vsock, ram));
				 }});
	return plans;
}

Result<std::shared_ptr<virtio::VirtioDevice>> open_slot(const SlotPlan &plan)
{
	auto device = plan.open();
	if (!device)
		return make_error("{}: {}", plan.key, device.error().message);
	return device;
}

const char *type_name(uint32_t device_type)
{
	switch (device_type) {
	case virtio::kDeviceTypeBlock:
		return "virtio-blk";
	case virtio::kDeviceTypeNet:
		return "virtio-net";
	case virtio::kDeviceTypeVsock:
		return "virtio-vsock";
	default:
		return "virtio";
	}
}

}  // namespace

Result<std::vector<virtio::BlockImage>> preflight_virtio_devices(const Config &config)
{
	std::vector<virtio::BlockImage> drives;
	for (size_t index = 0; index < config.drives.size(); ++index) {
		auto image = virtio::open_block_image(block_options(config.drives[index]));
		if (!image)
			return make_error("{}: {}", drive_key(index), image.error().message);
		drives.push_back(std::move(*image));
	}
	NoGuestRam no_ram;
	const auto plans = plan_slots(config, no_ram, drives);
	// The drives' plans would take their images: only the others open here.
	for (size_t index = config.drives.size(); index < plans.size(); ++index)
		KAIROS_TRY(open_slot(plans[index]));  // closed and let go again here
	return drives;
}

Status check_virtio_devices(const Config &config)
{
	KAIROS_TRY(preflight_virtio_devices(config));  // the drives' images close here
	return {};
}

VirtioDevices &VirtioDevices::operator=(VirtioDevices &&other)
{
	stop();
	slots_ = std::move(other.slots_);
	return *this;
}

VirtioDevices::~VirtioDevices()
{
	stop();
}

Result<VirtioDevices> VirtioDevices::create(const Config &config, std::vector<virtio::BlockImage> drives,
					    const GuestRam &ram, const VmFd &vm, devices::Bus &mmio_bus,
					    const Logger &log)
{
	if (drives.size() != config.drives.size())
		return make_error("{} drive images for {} drives", drives.size(), config.drives.size());
	VirtioDevices devices;
	const auto plans = plan_slots(config, ram, drives);
	for (size_t index = 0; index < plans.size(); ++index) {
		const uint64_t base = layout::kVirtioMmioBase + index * layout::kVirtioMmioSlotSize;
		const uint32_t gsi = layout::kVirtioMmioFirstGsi + static_cast<uint32_t>(index);
		Slot slot;
		slot.id = plans[index].id;
		slot.label = plans[index].label;
		KAIROS_TRY_ASSIGN(device, open_slot(plans[index]));
		slot.device = std::move(device);
		slot.interrupt = std::make_shared<KvmIrqLine>(vm, gsi, log);
		slot.transport = std::make_shared<virtio::MmioTransport>(
			slot.device, [interrupt = slot.interrupt] { interrupt->pulse(); });
		KAIROS_TRY(mmio_bus.add(base, virtio::MmioTransport::kSize, slot.transport));
		for (uint16_t queue = 0; queue < slot.device->queue_count(); ++queue)
			KAIROS_TRY(vm.register_ioeventfd_mmio(slot.device->notify_fd(queue),
							      base + virtio::MmioTransport::kQueueNotifyOffset,
							      kQueueNotifyWidth, queue));
		devices.slots_.push_back(std::move(slot));
	}
	return devices;
}

Status VirtioDevices::start(const Confinement &confinement)
{
	for (auto &slot : slots_) {
		Status started = slot.device->start([&confinement, label = slot.label] {
			// For ps and top: the name holds 15 bytes (prctl(2),
			// PR_SET_NAME); the violation report has the whole label.
			pthread_setname_np(pthread_self(), label.substr(0, 15).c_str());
			return confinement.enter(ThreadKind::Device, label);
		});
		if (!started)
			return make_error("{}: {}", slot.device->name(), started.error().message);
	}
	return {};
}

void VirtioDevices::stop()
{
	for (auto &slot : slots_)
		slot.device->stop();
}

std::vector<VirtioDeviceReport> VirtioDevices::stats() const
{
	std::vector<VirtioDeviceReport> reports;
	for (const auto &slot : slots_)
		reports.push_back({slot.id, type_name(slot.device->device_type()), slot.device->stats()});
	return reports;
}

}  // namespace kairos::vmm
