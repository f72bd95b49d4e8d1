#include "devices/virtio/vsock.h"

#include <fcntl.h>
// linux/vhost.h pulls in virtio_ring.h, whose legacy vring_init is C only.
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>
#include <poll.h>
#include <sys/ioctl.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/io_uring.h"
#include "base/unique_fd.h"
#include "devices/virtio/device_thread.h"

namespace kairos::devices::virtio {

namespace {

// vhost accepts up to 32768 (a power of 2); 256 as the other devices.
constexpr uint16_t kQueueMaxSize = 256;
constexpr uint16_t kQueueCount = 3;   // rx, tx, event (section 5.10.2)
constexpr uint32_t kVhostQueues = 2;  // rx and tx go to vhost
constexpr uint16_t kEventQueue = 2;

// io_uring user_data of the polls on the device's thread.
constexpr uint64_t kCallTag = 0;  // + vring index: 0 and 1
constexpr uint64_t kEventQueueTag = 2;
constexpr uint64_t kControlTag = 3;

// Section 5.10.4: struct virtio_vsock_config.
struct [[gnu::packed]] VsockConfig {
	uint64_t guest_cid;  // le64; x86 is little-endian
};
static_assert(sizeof(VsockConfig) == 8);

// The real backend: ioctls on /dev/vhost-vsock.
class KernelBackend : public VhostVsockBackend {
public:
	explicit KernelBackend(UniqueFd vhost) : vhost_(std::move(vhost)) {}

	Status set_features(uint64_t features) override
	{
		return call(VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES");
	}

	Status set_mem_table(std::span<const MemoryRegion> regions) override
	{
		// struct vhost_memory ends in a flexible array of regions.
		std::vector<uint64_t> storage(
			(sizeof(vhost_memory) + regions.size() * sizeof(vhost_memory_region) + 7) / 8);
		auto *memory = reinterpret_cast<vhost_memory *>(storage.data());
		memory->nregions = static_cast<uint32_t>(regions.size());
		for (size_t i = 0; i < regions.size(); ++i)
			memory->regions[i] = {regions[i].gpa, regions[i].size, regions[i].host_address, 0};
		return call(VHOST_SET_MEM_TABLE, memory, "VHOST_SET_MEM_TABLE");
	}

	Status set_vring(const Vring &vring) override
	{
		vhost_vring_state num = {vring.index, vring.size};
		KAIROS_TRY(call(VHOST_SET_VRING_NUM, &num, "VHOST_SET_VRING_NUM", vring.index));
		vhost_vring_state base = {vring.index, 0};
		KAIROS_TRY(call(VHOST_SET_VRING_BASE, &base, "VHOST_SET_VRING_BASE", vring.index));
		vhost_vring_addr addr = {};
		addr.index = vring.index;
		addr.desc_user_addr = vring.desc;
		addr.avail_user_addr = vring.avail;
		addr.used_user_addr = vring.used;
		KAIROS_TRY(call(VHOST_SET_VRING_ADDR, &addr, "VHOST_SET_VRING_ADDR", vring.index));
		vhost_vring_file kick = {vring.index, vring.kick_fd};
		KAIROS_TRY(call(VHOST_SET_VRING_KICK, &kick, "VHOST_SET_VRING_KICK", vring.index));
		vhost_vring_file call_file = {vring.index, vring.call_fd};
		return call(VHOST_SET_VRING_CALL, &call_file, "VHOST_SET_VRING_CALL", vring.index);
	}

	Status set_running(bool running) override
	{
		int value = running ? 1 : 0;
		return call(VHOST_VSOCK_SET_RUNNING, &value,
			    running ? "VHOST_VSOCK_SET_RUNNING 1" : "VHOST_VSOCK_SET_RUNNING 0");
	}

private:
	Status call(unsigned long request, void *argument, const char *what, int64_t vring = -1) const
	{
		if (ioctl(vhost_.get(), request, argument) == 0)
			return {};
		if (vring < 0)
			return errno_error(what);
		return errno_error(fmt::format("{} vring {}", what, vring));
	}

	UniqueFd vhost_;
};

// What activate hands to the device's thread.
struct Activation {
	uint64_t acked = 0;
	std::vector<QueueConfig> queues;
	Interrupt *interrupt = nullptr;
};

class Vsock : public VirtioDevice {
public:
	Vsock(const GuestRam &ram, VsockOptions options, std::unique_ptr<VhostVsockBackend> backend,
	      uint64_t vhost_features, std::array<EventFd, kQueueCount> notify, std::array<EventFd, kVhostQueues> call,
	      EventFd control)
		: ram_(ram), options_(std::move(options)), backend_(std::move(backend)),
		  features_(vsock_features(vhost_features)), notify_(std::move(notify)), call_(std::move(call)),
		  control_(std::move(control))
	{
	}
	~Vsock() override { stop(); }

	std::string name() const override { return fmt::format("virtio-vsock cid {}", options_.guest_cid); }
	uint32_t device_type() const override { return kDeviceTypeVsock; }
	uint64_t features() const override { return features_; }
	uint16_t queue_count() const override { return kQueueCount; }
	uint16_t queue_max_size() const override { return kQueueMaxSize; }

	void read_config(uint64_t offset, std::span<uint8_t> data) const override
	{
		const VsockConfig config = {options_.guest_cid};
		const auto *bytes = reinterpret_cast<const uint8_t *>(&config);
		for (size_t i = 0; i < data.size(); ++i)
			data[i] = offset + i < sizeof(config) ? bytes[offset + i] : 0;
	}
	void write_config(uint64_t, std::span<const uint8_t>) override {}  // guest_cid is read-only

	Status activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt) override;
	void reset() override;
	int notify_fd(uint16_t index) const override { return index < kQueueCount ? notify_[index].fd() : -1; }
	void notify(uint16_t index) override
	{
		if (index < kQueueCount)
			notify_[index].signal();
	}
	Status start(std::function<Status()> confine_thread) override;
	void stop() override;
	DeviceStats stats() const override;

private:
	enum class Request { None, Activate, Reset };

	static void count(std::atomic<uint64_t> &counter, uint64_t amount = 1) { DeviceCounters::add(counter, amount); }
	// Hands a request to the device's thread and waits for its answer.
	Status request(Request what, std::optional<Activation> activation);

	// The device's thread.
	void serve();
	void lost();
	// Carries out a request from activate or reset; false: stop.
	bool handle_control();
	Status start_vhost(const Activation &activation);
	void stop_vhost();
	void forward_call(uint32_t vring);

	const GuestRam &ram_;
	const VsockOptions options_;
	const std::unique_ptr<VhostVsockBackend> backend_;
	const uint64_t features_;
	const std::array<EventFd, kQueueCount> notify_;
	const std::array<EventFd, kVhostQueues> call_;
	const EventFd control_;  // wakes the thread for requests and stop

	// notifications: event queue kicks (rx/tx kicks go to vhost); vhost
	// moves the data, so requests and bytes stay 0.
	DeviceCounters counters_;

	// Shared between the thread and its callers (vCPU threads, main), under
	// thread_.mutex().
	DeviceThread thread_{name()};
	Request request_ = Request::None;
	std::optional<Activation> activation_;
	Status request_status_;

	std::optional<IoUring> ring_;

	// The thread's own state.
	Interrupt *interrupt_ = nullptr;  // set while vhost runs the rings
	bool running_ = false;
};

Status Vsock::activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt)
{
	if (queues.size() != kQueueCount || queues[0].size == 0 || queues[1].size == 0)
		return make_error("{}: the driver did not set up the rx and tx queues", name());
	return request(Request::Activate, Activation{acked, std::move(queues), &interrupt});
}

void Vsock::reset()
{
	// A failure to stop vhost is counted and logged by the thread; the
	// transport's reset goes on either way.
	(void)request(Request::Reset, std::nullopt);
}

Status Vsock::request(Request what, std::optional<Activation> activation)
{
	std::unique_lock lock(thread_.mutex());
	if (!thread_.running()) {
		// Without the thread vhost never ran: nothing to stop.
		if (what == Request::Reset)
			return {};
		return make_error("{}: its thread is not running", name());
	}
	request_ = what;
	activation_ = std::move(activation);
	control_.signal();
	thread_.changed().wait(lock, [this] { return request_ == Request::None || !thread_.running(); });
	if (request_ != Request::None)
		return make_error("{}: its thread stopped", name());
	return request_status_;
}

Status Vsock::start(std::function<Status()> confine_thread)
{
	if (!ring_) {
		// The four polls and room to re-arm them.
		auto ring = IoUring::create(16, name().c_str(), {IORING_OP_POLL_ADD});
		if (!ring)
			return ring.error();
		ring_.emplace(std::move(ring).value());
	}
	return thread_.start(std::move(confine_thread),
			     {
				     .serve = [this] { serve(); },
				     .lost = [this] { lost(); },
				     // Whatever ended the loop, vhost stops touching guest memory here.
				     .finish = [this] { stop_vhost(); },
			     });
}

void Vsock::stop()
{
	thread_.stop(control_);
}

DeviceStats Vsock::stats() const
{
	return counters_.snapshot();
}

void Vsock::lost()
{
	// Out of memory for the memory table.
	count(counters_.errors);
	if (interrupt_)
		interrupt_->needs_reset();
}

void Vsock::serve()
{
	for (uint32_t vring = 0; vring < kVhostQueues; ++vring)
		ring_->poll_add(call_[vring].fd(), POLLIN, kCallTag + vring);
	ring_->poll_add(notify_[kEventQueue].fd(), POLLIN, kEventQueueTag);
	ring_->poll_add(control_.fd(), POLLIN, kControlTag);
	// A request parked in the eventfd before start() is served too.
	if (!handle_control())
		return;
	for (;;) {
		const int submitted = io_uring_submit_and_wait(ring_->get(), 1);
		if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN && submitted != -EBUSY) {
			// The ring failed: interrupts can no longer be forwarded.
			count(counters_.errors);
			if (interrupt_)
				interrupt_->needs_reset();
			return;
		}
		bool control = false;
		ring_->reap([&](uint64_t tag, int) {
			if (tag == kControlTag) {
				control_.consume();
				ring_->poll_add(control_.fd(), POLLIN, kControlTag);
				control = true;
			} else if (tag == kEventQueueTag) {
				// The driver filled the event queue; no event is ever sent.
				count(counters_.notifications, notify_[kEventQueue].consume());
				ring_->poll_add(notify_[kEventQueue].fd(), POLLIN, kEventQueueTag);
			} else if (tag < kCallTag + kVhostQueues) {
				forward_call(static_cast<uint32_t>(tag - kCallTag));
			}
		});
		if (control && !handle_control())
			return;
	}
}

void Vsock::forward_call(uint32_t vring)
{
	// vhost already applied EVENT_IDX and NO_INTERRUPT before calling.
	if (call_[vring].consume() > 0 && interrupt_) {
		count(counters_.interrupts);
		interrupt_->used_buffers();
	}
	ring_->poll_add(call_[vring].fd(), POLLIN, kCallTag + vring);
}

bool Vsock::handle_control()
{
	std::unique_lock lock(thread_.mutex());
	if (thread_.stop_requested())
		return false;
	if (request_ == Request::None)
		return true;
	const Request what = request_;
	std::optional<Activation> activation = std::move(activation_);
	activation_.reset();
	lock.unlock();

	Status status;
	if (what == Request::Activate) {
		// The transport resets between activations; should one come
		// anyway, vhost lets go of the old rings first.
		stop_vhost();
		status = start_vhost(*activation);
		if (!status.ok())
			stop_vhost();
	} else {
		stop_vhost();
	}

	lock.lock();
	request_status_ = status;
	request_ = Request::None;
	lock.unlock();
	thread_.changed().notify_all();
	return true;
}

Status Vsock::start_vhost(const Activation &activation)
{
	// Only the bits vhost knows: the offer was vhost's less what Kairos
	// leaves out, and the transport refused anything not offered.
	KAIROS_TRY(backend_->set_features(activation.acked & features_));

	std::vector<VhostVsockBackend::MemoryRegion> regions;
	for (const auto &range : options_.ram) {
		auto host = ram_.slice(range.gpa, range.size);
		if (!host)
			return make_error("{}: {}", name(), host.error().message);
		regions.push_back({range.gpa, range.size, reinterpret_cast<uint64_t>(host->data())});
	}
	KAIROS_TRY(backend_->set_mem_table(regions));

	for (uint32_t index = 0; index < kVhostQueues; ++index) {
		const QueueConfig &queue = activation.queues[index];
		// Section 2.7: the sizes of the three areas of a split ring.
		const uint64_t size = queue.size;
		auto desc = ram_.slice(queue.desc_gpa, 16 * size);
		auto avail = ram_.slice(queue.avail_gpa, 6 + 2 * size);
		auto used = ram_.slice(queue.used_gpa, 6 + 8 * size);
		if (!desc || !avail || !used)
			return make_error("{}: queue {} is not in guest RAM", name(), index);
		KAIROS_TRY(backend_->set_vring({index, queue.size, reinterpret_cast<uint64_t>(desc->data()),
						reinterpret_cast<uint64_t>(avail->data()),
						reinterpret_cast<uint64_t>(used->data()), notify_[index].fd(),
						call_[index].fd()}));
	}
	// Calls left over from a previous activation are not this one's.
	for (const auto &call : call_)
		call.consume();
	interrupt_ = activation.interrupt;
	KAIROS_TRY(backend_->set_running(true));
	running_ = true;
	return {};
}

void Vsock::stop_vhost()
{
	interrupt_ = nullptr;
	if (!running_)
		return;
	running_ = false;
	// vhost flushes its work before this returns: no ring access after.
	if (!backend_->set_running(false).ok())
		count(counters_.errors);
}

Error cid_error(const VsockOptions &options, int error)
{
	switch (error) {
	case EADDRINUSE:
		return make_error("cid {} is in use by another VM (choose another vsock.cid)", options.guest_cid);
	case EADDRNOTAVAIL:
		return make_error("cid {} is an address of this host itself (choose another vsock.cid)",
				  options.guest_cid);
	default:
		return errno_error(fmt::format("VHOST_VSOCK_SET_GUEST_CID {}", options.guest_cid), error);
	}
}

Error open_error(const VsockOptions &options, int error)
{
	const std::string &path = options.device_path;
	switch (error) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		// No node, or a node with no driver behind it (Debian makes the
		// node at boot and the module loads on first open, when present).
		return make_error("{}: no such device (load the vhost_vsock module: modprobe vhost_vsock)", path);
	case EACCES:
	case EPERM:
		return make_error("{}: permission denied (Kairos needs to open it read-write)", path);
	default:
		return errno_error(path, error);
	}
}

}  // namespace

uint64_t vsock_features(uint64_t vhost_features)
{
	// vhost implements the rings, so a ring feature is offered only when
	// vhost reports it; VERSION_1 is the transport's requirement.
	return kFeatureVersion1 | (vhost_features & (kFeatureEventIdx | kFeatureIndirectDesc | kVsockFeatureSeqpacket));
}

Result<std::shared_ptr<VirtioDevice>> make_vsock(const GuestRam &ram, const VsockOptions &options,
						 std::unique_ptr<VhostVsockBackend> backend, uint64_t vhost_features)
{
	if (!(vhost_features & kFeatureVersion1))
		return make_error("{}: this kernel's vhost-vsock does not offer VIRTIO_F_VERSION_1",
				  options.device_path);
	std::array<std::optional<EventFd>, kQueueCount> notify;
	for (auto &fd : notify) {
		KAIROS_TRY_ASSIGN(created, EventFd::create(EventFd::Mode::NonBlocking, "virtio-vsock kicks"));
		fd.emplace(std::move(created));
	}
	std::array<std::optional<EventFd>, kVhostQueues> call;
	for (auto &fd : call) {
		KAIROS_TRY_ASSIGN(created, EventFd::create(EventFd::Mode::NonBlocking, "vhost-vsock calls"));
		fd.emplace(std::move(created));
	}
	KAIROS_TRY_ASSIGN(control, EventFd::create(EventFd::Mode::NonBlocking, "virtio-vsock control"));
	return std::shared_ptr<VirtioDevice>(std::make_shared<Vsock>(
		ram, options, std::move(backend), vhost_features,
		std::array<EventFd, kQueueCount>{std::move(*notify[0]), std::move(*notify[1]), std::move(*notify[2])},
		std::array<EventFd, kVhostQueues>{std::move(*call[0]), std::move(*call[1])}, std::move(control)));
}

Result<std::shared_ptr<VirtioDevice>> open_vsock(const GuestRam &ram, const VsockOptions &options)
{
	UniqueFd vhost(open(options.device_path.c_str(), O_RDWR | O_CLOEXEC));
	if (!vhost)
		return open_error(options, errno);
	// The owner is this process: vhost's worker then uses its memory map.
	if (ioctl(vhost.get(), VHOST_SET_OWNER) != 0)
		return errno_error(options.device_path + ": VHOST_SET_OWNER");
	uint64_t vhost_features = 0;
	if (ioctl(vhost.get(), VHOST_GET_FEATURES, &vhost_features) != 0)
		return errno_error(options.device_path + ": VHOST_GET_FEATURES");
	uint64_t cid = options.guest_cid;
	if (ioctl(vhost.get(), VHOST_VSOCK_SET_GUEST_CID, &cid) != 0)
		return cid_error(options, errno);
	return make_vsock(ram, options, std::make_unique<KernelBackend>(std::move(vhost)), vhost_features);
}

}  // namespace kairos::devices::virtio
