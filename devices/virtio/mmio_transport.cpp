#include "devices/virtio/mmio_transport.h"

#include <algorithm>
#include <cstring>

namespace kairos::devices::virtio {

// Locking. Two mutexes, always taken in this order:
//   1. lifecycle_mutex_: held by a vCPU across a Status write, including
//      the device's activate() and reset(), which may wait for the
//      device's thread (reset waits for its in-flight I/O);
//   2. mutex_: the registers; a leaf, never held while calling the device
//      or raise_interrupt_.
// The device's thread takes only mutex_ (through used_buffers and
// needs_reset), so a reset waiting for that thread cannot deadlock with it.

namespace {

// Section 4.2.2 register offsets.
constexpr uint64_t kMagicValue = 0x000;
constexpr uint64_t kVersion = 0x004;
constexpr uint64_t kDeviceId = 0x008;
constexpr uint64_t kVendorId = 0x00c;
constexpr uint64_t kDeviceFeatures = 0x010;
constexpr uint64_t kDeviceFeaturesSel = 0x014;
constexpr uint64_t kDriverFeatures = 0x020;
constexpr uint64_t kDriverFeaturesSel = 0x024;
constexpr uint64_t kQueueSel = 0x030;
constexpr uint64_t kQueueNumMax = 0x034;
constexpr uint64_t kQueueNum = 0x038;
constexpr uint64_t kQueueReady = 0x044;
constexpr uint64_t kQueueNotify = MmioTransport::kQueueNotifyOffset;
constexpr uint64_t kInterruptStatus = 0x060;
constexpr uint64_t kInterruptAck = 0x064;
constexpr uint64_t kStatus = 0x070;
constexpr uint64_t kQueueDescLow = 0x080;
constexpr uint64_t kQueueDescHigh = 0x084;
constexpr uint64_t kQueueDriverLow = 0x090;
constexpr uint64_t kQueueDriverHigh = 0x094;
constexpr uint64_t kQueueDeviceLow = 0x0a0;
constexpr uint64_t kQueueDeviceHigh = 0x0a4;
constexpr uint64_t kShmLenLow = 0x0b0;
constexpr uint64_t kShmLenHigh = 0x0b4;
constexpr uint64_t kShmBaseLow = 0x0b8;
constexpr uint64_t kShmBaseHigh = 0x0bc;
constexpr uint64_t kConfigGeneration = 0x0fc;
constexpr uint64_t kConfig = 0x100;

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion2 = 2;        // no legacy interface (section 4.2.4)
// "KRS\0" read as little-endian bytes: Kairos. Section 4.2.2 leaves the
// vendor ID to the device; Linux only prints it.
constexpr uint32_t kKairosVendorId = 0x0053524b;

// Device status bits (section 2.1).
constexpr uint32_t kAcknowledge = 1;
constexpr uint32_t kDriver = 2;
constexpr uint32_t kDriverOk = 4;
constexpr uint32_t kFeaturesOk = 8;
constexpr uint32_t kDeviceNeedsReset = 64;
constexpr uint32_t kFailed = 128;

// InterruptStatus bits (section 4.2.2).
constexpr uint32_t kUsedBufferInterrupt = 1;
constexpr uint32_t kConfigChangeInterrupt = 2;

uint32_t low_half(uint64_t value)
{
	return static_cast<uint32_t>(value);
}
uint32_t high_half(uint64_t value)
{
	return static_cast<uint32_t>(value >> 32);
}
void set_low_half(uint64_t &value, uint32_t half)
{
	value = (value & 0xffff'ffff'0000'0000) | half;
}
void set_high_half(uint64_t &value, uint32_t half)
{
	value = (value & 0xffff'ffff) | uint64_t{half} << 32;
}

// The 64-bit address a QueueDesc/Driver/Device Low or High register
// (offset) holds half of; High is Low + 4.
template <typename Config>
auto *queue_address(Config &queue, uint64_t offset)
{
	switch (offset & ~uint64_t{4}) {
	case kQueueDescLow:
		return &queue.desc_gpa;
	case kQueueDriverLow:
		return &queue.avail_gpa;
	default:
		return &queue.used_gpa;
	}
}

}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, std::function<void()> raise_interrupt)
	: device_(std::move(device)), raise_interrupt_(std::move(raise_interrupt))
{
	reset_registers();
}

MmioTransport::~MmioTransport()
{
	device_->reset();
}

std::string MmioTransport::name() const
{
	return device_->name();
}

uint32_t MmioTransport::status() const
{
	std::lock_guard lock(mutex_);
	return status_;
}

std::string MmioTransport::last_error() const
{
	std::lock_guard lock(mutex_);
	return last_error_;
}

void MmioTransport::reset_registers()
{
	status_ = 0;
	interrupt_status_ = 0;
	device_features_sel_ = 0;
	driver_features_sel_ = 0;
	driver_features_ = 0;
	queue_sel_ = 0;
	// QueueNum starts at the maximum, as PCI's queue_size does, for a
	// driver that never writes it.
	queues_.assign(device_->queue_count(), QueueConfig{.size = device_->queue_max_size()});
	queue_ready_.assign(device_->queue_count(), false);
}

QueueConfig *MmioTransport::writable_queue()
{
	// Section 4.2.2: queue registers are set up before DRIVER_OK, and a
	// queue's layout is frozen while QueueReady is 1.
	if (queue_sel_ >= queues_.size() || (status_ & kDriverOk) || queue_ready_[queue_sel_])
		return nullptr;
	return &queues_[queue_sel_];
}

uint32_t MmioTransport::read_register(uint64_t offset) const
{
	const bool queue_exists = queue_sel_ < queues_.size();
	switch (offset) {
	case kMagicValue:
		return kMagic;
	case kVersion:
		return kVersion2;
	case kDeviceId:
		return device_->device_type();
	case kVendorId:
		return kKairosVendorId;
	case kDeviceFeatures:
		if (device_features_sel_ > 1)
			return 0;
		return device_features_sel_ == 0 ? low_half(device_->features()) : high_half(device_->features());
	case kQueueNumMax:
		// 0: the selected queue does not exist (section 4.2.2).
		return queue_exists ? device_->queue_max_size() : 0;
	case kQueueNum:
		return queue_exists ? queues_[queue_sel_].size : 0;
	case kQueueReady:
		return queue_exists && queue_ready_[queue_sel_];
	case kQueueDescLow:
	case kQueueDescHigh:
	case kQueueDriverLow:
	case kQueueDriverHigh:
	case kQueueDeviceLow:
	case kQueueDeviceHigh:
		if (!queue_exists)
			return 0;
		return (offset & 4) ? high_half(*queue_address(queues_[queue_sel_], offset))
				    : low_half(*queue_address(queues_[queue_sel_], offset));
	case kInterruptStatus:
		return interrupt_status_;
	case kStatus:
		return status_;
	case kShmLenLow:
	case kShmLenHigh:
		return 0xffff'ffff;  // length -1: no shared memory region (section 4.2.2)
	case kShmBaseLow:
	case kShmBaseHigh:
		return 0;
	case kConfigGeneration:
		return config_generation_;
	default:
		return 0;  // write-only and reserved registers
	}
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data)
{
	if (offset >= kConfig) {
		device_->read_config(offset - kConfig, data);
		return;
	}
	std::fill(data.begin(), data.end(), 0);
	if (data.size() != 4 || offset % 4 != 0)
		return;
	uint32_t value;
	{
		std::lock_guard lock(mutex_);
		value = read_register(offset);
	}
	std::memcpy(data.data(), &value, sizeof(value));
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data)
{
	if (offset >= kConfig) {
		device_->write_config(offset - kConfig, data);
		return;
	}
	if (data.size() != 4 || offset % 4 != 0)
		return;
	uint32_t value;
	std::memcpy(&value, data.data(), sizeof(value));

	if (offset == kStatus) {
		write_status(value);
		return;
	}
	if (offset == kQueueNotify) {
		// Outside the lock: notify only signals the device's eventfd.
		if (value < device_->queue_count())
			device_->notify(static_cast<uint16_t>(value));
		return;
	}

	std::lock_guard lock(mutex_);
	QueueConfig *queue = nullptr;
	switch (offset) {
	case kDeviceFeaturesSel:
		device_features_sel_ = value;
		break;
	case kDriverFeaturesSel:
		driver_features_sel_ = value;
		break;
	case kDriverFeatures:
		// Features are frozen once FEATURES_OK is set (section 3.1.1).
		if (status_ & kFeaturesOk)
			break;
		if (driver_features_sel_ == 0)
			set_low_half(driver_features_, value);
		else if (driver_features_sel_ == 1)
			set_high_half(driver_features_, value);
		break;
	case kQueueSel:
		queue_sel_ = value;
		break;
	case kQueueNum:
		// A power of 2 no larger than QueueNumMax (section 2.7).
		if ((queue = writable_queue()) && value != 0 && value <= device_->queue_max_size() &&
		    (value & (value - 1)) == 0)
			queue->size = static_cast<uint16_t>(value);
		break;
	case kQueueReady:
		if (queue_sel_ < queues_.size() && !(status_ & kDriverOk))
			queue_ready_[queue_sel_] = value & 1;
		break;
	case kInterruptAck:
		interrupt_status_ &= ~value;
		break;
	case kQueueDescLow:
	case kQueueDescHigh:
	case kQueueDriverLow:
	case kQueueDriverHigh:
	case kQueueDeviceLow:
	case kQueueDeviceHigh:
		if (!(queue = writable_queue()))
			break;
		if (offset & 4)
			set_high_half(*queue_address(*queue, offset), value);
		else
			set_low_half(*queue_address(*queue, offset), value);
		break;
	default:
		break;  // read-only and reserved registers
	}
}

void MmioTransport::write_status(uint32_t value)
{
	std::lock_guard lifecycle(lifecycle_mutex_);
	if (value == 0) {
		// Section 2.1.2 / 4.2.3.1: writing 0 resets the device. The
		// device stops first, so no used_buffers lands after the clear.
		device_->reset();
		std::lock_guard lock(mutex_);
		reset_registers();
		last_error_.clear();
		return;
	}

	std::vector<QueueConfig> queues;
	uint64_t acked = 0;
	{
		std::lock_guard lock(mutex_);
		// The driver only sets bits (section 2.1.2: it must not clear
		// one but by a reset); DEVICE_NEEDS_RESET is the device's.
		const uint32_t added = value & ~status_ & ~kDeviceNeedsReset;
		if (added & (kAcknowledge | kFailed))
			status_ |= added & (kAcknowledge | kFailed);
		if ((added & kDriver) && (status_ & kAcknowledge))
			status_ |= kDriver;
		if ((added & kFeaturesOk) && (status_ & kDriver)) {
			// Section 3.1.1 step 5-6: FEATURES_OK stays clear when the
			// driver took features not offered, or not VERSION_1
			// (there is no legacy interface).
			const bool subset = (driver_features_ & ~device_->features()) == 0;
			if (subset && (driver_features_ & kFeatureVersion1))
				status_ |= kFeaturesOk;
		}
		if (!(added & kDriverOk) || !(status_ & kFeaturesOk) || (status_ & kDeviceNeedsReset))
			return;
		status_ |= kDriverOk;
		acked = driver_features_;
		for (size_t i = 0; i < queues_.size(); ++i) {
			QueueConfig config = queue_ready_[i] ? queues_[i] : QueueConfig{};
			config.event_idx = acked & kFeatureEventIdx;
			config.indirect_desc = acked & kFeatureIndirectDesc;
			queues.push_back(config);
		}
	}

	// DRIVER_OK, once per reset: the device takes over its queues.
	Status activated = device_->activate(acked, std::move(queues), *this);
	if (!activated.ok()) {
		{
			std::lock_guard lock(mutex_);
			last_error_ = activated.error().message;
		}
		needs_reset();
	}
}

void MmioTransport::used_buffers()
{
	{
		std::lock_guard lock(mutex_);
		interrupt_status_ |= kUsedBufferInterrupt;
	}
	raise_interrupt_();
}

void MmioTransport::needs_reset()
{
	{
		std::lock_guard lock(mutex_);
		if (!(status_ & kDriverOk) && !(status_ & kFeaturesOk))
			return;  // reset meanwhile: nothing to report
		status_ |= kDeviceNeedsReset;
		interrupt_status_ |= kConfigChangeInterrupt;
	}
	raise_interrupt_();
}

}  // namespace kairos::devices::virtio
