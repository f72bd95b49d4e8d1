#include "vmm/virtio_devices.h"

#include <pthread.h>

#include <fmt/format.h>

#include "base/error.h"
#include "devices/virtio/block.h"
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

Result<std::shared_ptr<virtio::VirtioDevice>> open_drive(const GuestRam &ram, const Config &config, size_t index)
{
	auto device = virtio::open_block(ram, block_options(config.drives[index]));
	if (!device)
		return make_error("drives[{}].path: {}", index, device.error().message);
	return device;
}

const char *type_name(uint32_t device_type)
{
	return device_type == virtio::kDeviceTypeBlock ? "virtio-blk" : "virtio";
}

}  // namespace

Status check_drives(const Config &config)
{
	NoGuestRam no_ram;
	for (size_t index = 0; index < config.drives.size(); ++index)
		KAIROS_TRY(open_drive(no_ram, config, index));  // closed and unlocked again here
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

Result<VirtioDevices> VirtioDevices::create(const Config &config, const GuestRam &ram, const VmFd &vm,
					    devices::Bus &mmio_bus)
{
	VirtioDevices devices;
	for (size_t index = 0; index < config.drives.size(); ++index) {
		const uint64_t base = layout::kVirtioMmioBase + index * layout::kVirtioMmioSlotSize;
		const uint32_t gsi = layout::kVirtioMmioFirstGsi + static_cast<uint32_t>(index);
		Slot slot;
		slot.id = config.drives[index].id;
		KAIROS_TRY_ASSIGN(device, open_drive(ram, config, index));
		slot.device = std::move(device);
		KAIROS_TRY_ASSIGN(interrupt, EventFd::create(EventFd::Mode::NonBlocking, "a virtio interrupt"));
		slot.interrupt = std::make_shared<EventFd>(std::move(interrupt));
		KAIROS_TRY(vm.register_irqfd(slot.interrupt->fd(), gsi));
		slot.transport = std::make_shared<virtio::MmioTransport>(
			slot.device, [interrupt = slot.interrupt] { interrupt->signal(); });
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
		std::string label = "kairos-blk-" + slot.id;
		Status started = slot.device->start([&confinement, label] {
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
