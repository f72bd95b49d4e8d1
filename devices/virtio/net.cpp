#include "devices/virtio/net.h"

#include <linux/if_tun.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/io_uring.h"
#include "devices/virtio/chain_bytes.h"
#include "devices/virtio/device_thread.h"
#include "devices/virtio/net_device.h"
#include "devices/virtio/tap.h"

namespace kairos::devices::virtio {

namespace {

constexpr uint16_t kQueueMaxSize = 256;
constexpr uint16_t kReceiveQueue = 0;
constexpr uint16_t kTransmitQueue = 1;
constexpr uint16_t kLinkUp = 1;  // VIRTIO_NET_S_LINK_UP (section 5.1.4)
// Frames moved per queue before the other queue and the control eventfd
// get a turn: a busy direction does not starve the other one.
constexpr int kFramesPerTurn = 64;

// io_uring user_data of the thread's polls: the three eventfds, and the
// frame endpoint with the poll's events in the low 16 bits.
constexpr uint64_t kControlTag = 1ULL << 32;
constexpr uint64_t kReceiveNotifyTag = 2ULL << 32;
constexpr uint64_t kTransmitNotifyTag = 3ULL << 32;
constexpr uint64_t kFramesTag = 4ULL << 32;

// Section 5.1.4: struct virtio_net_config up to status (the fields the
// offered features give meaning to; the rest reads as zero).
struct [[gnu::packed]] NetConfig {
	uint8_t mac[6];
	uint16_t status;
};
static_assert(sizeof(NetConfig) == 8);

// What activate hands to the device's thread.
struct Activation {
	uint64_t acked;
	SplitQueue receive;
	SplitQueue transmit;
	Interrupt *interrupt;
};

class Net : public VirtioDevice {
public:
	Net(const GuestRam &ram, std::string id, std::array<uint8_t, 6> mac, UniqueFd frames, FrameEndpoint endpoint,
	    EventFd receive_notify, EventFd transmit_notify, EventFd control)
		: ram_(ram), id_(std::move(id)), mac_(mac), frames_(std::move(frames)), endpoint_(endpoint),
		  receive_notify_(std::move(receive_notify)), transmit_notify_(std::move(transmit_notify)),
		  control_(std::move(control))
	{
	}
	~Net() override { stop(); }

	std::string name() const override { return "virtio-net " + id_; }
	uint32_t device_type() const override { return kDeviceTypeNet; }
	uint64_t features() const override
	{
		return kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | kNetMac | kNetStatus |
		       kNetMrgRxbuf | kNetCsum | kNetGuestCsum | kNetGuestTso4 | kNetGuestTso6 | kNetHostTso4 |
		       kNetHostTso6;
	}
	uint16_t queue_count() const override { return 2; }
	uint16_t queue_max_size() const override { return kQueueMaxSize; }

	void read_config(uint64_t offset, std::span<uint8_t> data) const override;
	// Section 5.1.4: with VERSION_1 the mac is read-only (no CTRL_MAC_ADDR).
	void write_config(uint64_t, std::span<const uint8_t>) override {}

	Status activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt) override;
	void reset() override;
	int notify_fd(uint16_t index) const override
	{
		if (index == kReceiveQueue)
			return receive_notify_.fd();
		return index == kTransmitQueue ? transmit_notify_.fd() : -1;
	}
	void notify(uint16_t index) override
	{
		if (index == kReceiveQueue)
			receive_notify_.signal();
		else if (index == kTransmitQueue)
			transmit_notify_.signal();
	}
	Status start(std::function<Status()> confine_thread) override;
	void stop() override;
	DeviceStats stats() const override;

private:
	static void count(std::atomic<uint64_t> &counter, uint64_t amount = 1) { DeviceCounters::add(counter, amount); }

	// The device's thread.
	void serve();
	void lost();
	// Applies reset / activation / stop requests; false: stop serving.
	bool handle_control();
	void forget_queues();
	// Waits for an eventfd or the frame fd (not at all when `busy`).
	enum class Wake { Work, Control, RingFailed };
	Wake wait(bool busy);
	// A one-shot poll on the frame fd for the events wanted and not yet
	// armed. (The eventfds' polls are armed at the start and re-armed as
	// they fire, as a disk's are.)
	void arm_frame_poll(short frame_events);
	// Takes what completed; true when control fired.
	bool reap();

	// Receive: frames from the endpoint into the receive queue. True
	// when it stopped only because its turn was over.
	bool serve_receive();
	// Pops receive chains until those held have `bytes` writable bytes;
	// false when the queue ran out (or broke).
	bool hold_receive_buffers(uint64_t bytes);
	// Puts frame_ into held chains; false when it must wait for buffers.
	bool deliver_frame();

	// Transmit: the transmit queue's frames to the endpoint. True when
	// it stopped only because its turn was over.
	bool serve_transmit();
	// False when the endpoint would block (the chain waits in
	// transmit_waiting_).
	bool transmit(const Chain &chain);

	// A pop that broke the ring: nothing is served until reset.
	std::optional<Chain> pop(SplitQueue &queue);
	void malformed();
	void push_used(SplitQueue &queue, bool &pending, uint16_t head, uint32_t written);
	void signal_used();

	const GuestRam &ram_;
	const std::string id_;
	const std::array<uint8_t, 6> mac_;
	const UniqueFd frames_;
	const FrameEndpoint endpoint_;
	const EventFd receive_notify_;
	const EventFd transmit_notify_;
	// Wakes the thread for reset, activation and stop.
	const EventFd control_;
	// The thread's waits: polls on the eventfds and the frame fd (made by
	// start(), used by the thread alone).
	std::optional<IoUring> ring_;
	short frame_events_armed_ = 0;  // the OR of the frame fd's pending polls
	// requests: frames both ways; bytes_read: to the guest; bytes_written:
	// from the guest.
	DeviceCounters counters_;

	// Shared between the thread and its callers (vCPU threads, main), under
	// thread_.mutex().
	DeviceThread thread_{name()};
	std::optional<Activation> pending_;

	// The thread's own state.
	std::optional<SplitQueue> receive_;
	std::optional<SplitQueue> transmit_;
	uint64_t acked_ = 0;
	Interrupt *interrupt_ = nullptr;
	bool broken_ = false;  // a malformed chain: the queues are not served until reset
	bool receive_used_ = false;
	bool transmit_used_ = false;
	// One frame read from the endpoint and not yet delivered (it waits
	// for buffers): the device's only copy of guest-bound data, bounded.
	std::vector<uint8_t> frame_;
	size_t frame_bytes_ = 0;
	// Receive chains popped and not yet used; with MRG_RXBUF a frame is
	// spread over several.
	std::deque<Chain> held_;
	uint64_t held_bytes_ = 0;
	bool wants_frames_ = false;  // buffers are held, the endpoint had none
	bool endpoint_closed_ = false;
	std::optional<Chain> transmit_waiting_;
};

void Net::read_config(uint64_t offset, std::span<uint8_t> data) const
{
	NetConfig config = {};
	std::memcpy(config.mac, mac_.data(), mac_.size());
	config.status = kLinkUp;
	const auto *bytes = reinterpret_cast<const uint8_t *>(&config);
	for (size_t i = 0; i < data.size(); ++i)
		data[i] = offset + i < sizeof(config) ? bytes[offset + i] : 0;
}

Status Net::activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt)
{
	if (queues.size() != 2 || queues[kReceiveQueue].size == 0 || queues[kTransmitQueue].size == 0)
		return make_error("{}: the driver did not set up queues 0 and 1", name());
	auto receive = SplitQueue::create(ram_, queues[kReceiveQueue]);
	if (!receive)
		return make_error("{}: receive queue: {}", name(), receive.error().message);
	auto transmit = SplitQueue::create(ram_, queues[kTransmitQueue]);
	if (!transmit)
		return make_error("{}: transmit queue: {}", name(), transmit.error().message);
	{
		std::lock_guard lock(thread_.mutex());
		pending_.emplace(
			Activation{acked, std::move(receive).value(), std::move(transmit).value(), &interrupt});
	}
	control_.signal();
	return {};
}

void Net::reset()
{
	thread_.request_reset(control_, [this] { pending_.reset(); });
}

Status Net::start(std::function<Status()> confine_thread)
{
	if (frame_.empty())
		frame_.resize(kMaxFrameBytes);
	if (!ring_) {
		// Three eventfd polls, up to two on the frame fd, and room.
		auto ring = IoUring::create(8, name().c_str(), {IORING_OP_POLL_ADD});
		if (!ring)
			return ring.error();
		ring_.emplace(std::move(ring).value());
	}
	return thread_.start(std::move(confine_thread), {
								.serve = [this] { serve(); },
								.lost = [this] { lost(); },
								.finish = [this] { forget_queues(); },
							});
}

void Net::stop()
{
	thread_.stop(control_);
}

DeviceStats Net::stats() const
{
	return counters_.snapshot();
}

void Net::lost()
{
	count(counters_.errors);
	if (interrupt_)
		interrupt_->needs_reset();
}

void Net::serve()
{
	ring_->poll_add(control_.fd(), POLLIN, kControlTag);
	ring_->poll_add(receive_notify_.fd(), POLLIN, kReceiveNotifyTag);
	ring_->poll_add(transmit_notify_.fd(), POLLIN, kTransmitNotifyTag);
	// Requests parked in the eventfds before start() are served too.
	if (!handle_control())
		return;
	for (;;) {
		const bool transmit_busy = serve_transmit();
		const bool receive_busy = serve_receive();
		signal_used();
		const Wake wake = wait(transmit_busy || receive_busy);
		if (wake == Wake::RingFailed) {
			// Nothing can be waited for any more: the device is lost
			// (DEVICE_NEEDS_RESET) and its thread ends, as a disk's does.
			lost();
			return;
		}
		if (wake == Wake::Control && !handle_control())
			return;
	}
}

Net::Wake Net::wait(bool busy)
{
	const bool active = receive_ && !broken_;
	short frame_events = 0;
	// Read the endpoint only with a buffer to put the frame in.
	if (active && wants_frames_ && !endpoint_closed_)
		frame_events |= POLLIN;
	if (active && transmit_waiting_)
		frame_events |= POLLOUT;
	arm_frame_poll(frame_events);
	const int submitted = busy ? io_uring_submit(ring_->get()) : io_uring_submit_and_wait(ring_->get(), 1);
	if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN && submitted != -EBUSY)
		return Wake::RingFailed;
	return reap() ? Wake::Control : Wake::Work;
}

void Net::arm_frame_poll(short frame_events)
{
	// A poll armed earlier and no longer wanted stays: it completes once
	// the fd is ready, costing one look at the queues.
	if (const short missing = frame_events & ~frame_events_armed_; missing) {
		ring_->poll_add(frames_.get(), static_cast<unsigned>(missing),
				kFramesTag | static_cast<uint16_t>(missing));
		frame_events_armed_ |= missing;
	}
}

bool Net::reap()
{
	bool control = false;
	ring_->reap([&](uint64_t tag, int result) {
		// Consumed here, counted once; the queues are looked at next turn.
		if (tag == kControlTag) {
			control_.consume();
			ring_->poll_add(control_.fd(), POLLIN, kControlTag);
			control = true;
		} else if (tag == kReceiveNotifyTag) {
			count(counters_.notifications, receive_notify_.consume());
			ring_->poll_add(receive_notify_.fd(), POLLIN, kReceiveNotifyTag);
		} else if (tag == kTransmitNotifyTag) {
			count(counters_.notifications, transmit_notify_.consume());
			ring_->poll_add(transmit_notify_.fd(), POLLIN, kTransmitNotifyTag);
		} else if ((tag & ~uint64_t{0xffff}) == kFramesTag) {
			frame_events_armed_ &= static_cast<short>(~static_cast<short>(tag & 0xffff));
			if (result > 0 && (result & (POLLERR | POLLHUP)))
				endpoint_closed_ = true;
		}
	});
	return control;
}

bool Net::handle_control()
{
	std::unique_lock lock(thread_.mutex());
	if (thread_.stop_requested())
		return false;
	if (thread_.reset_pending()) {
		// Section 2.1.2 reset: done with the queues before reset()
		// returns; a frame read and not delivered is dropped, as a
		// NIC's would be.
		forget_queues();
		thread_.reset_done(thread_.reset_requests());
	}
	if (!pending_)
		return true;
	Activation activation = std::move(*pending_);
	pending_.reset();
	lock.unlock();
	forget_queues();
	receive_.emplace(std::move(activation.receive));
	transmit_.emplace(std::move(activation.transmit));
	acked_ = activation.acked;
	interrupt_ = activation.interrupt;
	if (endpoint_ == FrameEndpoint::Tap) {
		// Here and not in activate: the vCPU thread may not ioctl. A
		// failure leaves the TAP's offloads at open's none, which any
		// driver can take.
		if (!set_tap_offload(frames_.get(), tap_offloads(acked_)).ok())
			count(counters_.errors);
	}
	return true;
}

void Net::forget_queues()
{
	receive_.reset();
	transmit_.reset();
	interrupt_ = nullptr;
	broken_ = false;
	receive_used_ = false;
	transmit_used_ = false;
	frame_bytes_ = 0;
	held_.clear();
	held_bytes_ = 0;
	wants_frames_ = false;
	transmit_waiting_.reset();
}

std::optional<Chain> Net::pop(SplitQueue &queue)
{
	for (;;) {
		auto chain = queue.pop();
		if (!chain) {
			malformed();
			return std::nullopt;
		}
		if (chain->has_value())
			return std::move(**chain);
		// Publish avail_event, then look again: a chain made available
		// meanwhile came without a notification.
		auto more = queue.enable_notifications();
		if (!more) {
			malformed();
			return std::nullopt;
		}
		if (!*more)
			return std::nullopt;
	}
}

void Net::malformed()
{
	// Section 2.1.2: the guest broke a ring; stop serving until the
	// driver resets the device.
	count(counters_.errors);
	broken_ = true;
	if (interrupt_)
		interrupt_->needs_reset();
}

void Net::push_used(SplitQueue &queue, bool &pending, uint16_t head, uint32_t written)
{
	// Fails only for a head past the queue size, which pop never returns.
	(void)queue.push_used(head, written);
	pending = true;
}

bool Net::serve_receive()
{
	wants_frames_ = false;
	for (int turn = 0; turn < kFramesPerTurn && receive_ && !broken_; ++turn) {
		if (frame_bytes_ == 0) {
			if (endpoint_closed_ || !hold_receive_buffers(1))
				return false;
			const ssize_t got = read(frames_.get(), frame_.data(), frame_.size());
			if (got < 0) {
				if (errno != EAGAIN && errno != EINTR)
					count(counters_.errors);
				wants_frames_ = errno != EBADFD;
				return false;
			}
			if (got == 0) {
				endpoint_closed_ = true;  // a socket endpoint's peer left
				return false;
			}
			if (static_cast<size_t>(got) <= sizeof(NetHeader)) {
				count(counters_.errors);  // no frame after the header
				continue;
			}
			frame_bytes_ = static_cast<size_t>(got);
		}
		if (!deliver_frame())
			return false;
	}
	return receive_ && !broken_;
}

bool Net::hold_receive_buffers(uint64_t bytes)
{
	while (held_bytes_ < bytes) {
		auto chain = pop(*receive_);
		if (!chain)
			return false;
		if (chain->writable_bytes < sizeof(NetHeader)) {
			// Section 5.1.6.3: a receive buffer holds at least the
			// header. This one cannot; it goes back unused.
			count(counters_.errors);
			push_used(*receive_, receive_used_, chain->head, 0);
			continue;
		}
		held_bytes_ += chain->writable_bytes;
		held_.push_back(std::move(*chain));
	}
	return true;
}

bool Net::deliver_frame()
{
	const bool mergeable = acked_ & kNetMrgRxbuf;
	if (!hold_receive_buffers(mergeable ? frame_bytes_ : 1))
		return false;  // the frame waits for the driver's next buffers
	if (!mergeable && held_.front().writable_bytes < frame_bytes_) {
		// Too big for the driver's buffer (it did not take GSO frames
		// but sent us a small MTU buffer): dropped, as a NIC would.
		count(counters_.errors);
		frame_bytes_ = 0;
		return true;
	}
	// Section 5.1.6.4: num_buffers is how many chains the frame took.
	uint16_t buffers = 0;
	for (uint64_t done = 0, left = frame_bytes_; left > 0; ++buffers) {
		const Chain &chain = held_[buffers];
		const uint64_t length = std::min(left, chain.writable_bytes);
		const ChainBytes writable(ram_, chain, ChainBytes::Part::Writable);
		if (!writable.copy_in(0, {frame_.data() + done, length}).ok()) {
			malformed();  // pop checked the buffers are in RAM
			return false;
		}
		done += length;
		left -= length;
	}
	const ChainBytes first(ram_, held_.front(), ChainBytes::Part::Writable);
	const uint8_t count_bytes[2] = {static_cast<uint8_t>(buffers), static_cast<uint8_t>(buffers >> 8)};
	(void)first.copy_in(offsetof(NetHeader, num_buffers), count_bytes);
	// All of the frame's buffers appear in the used ring at once: the
	// driver reads num_buffers from the first and takes the rest then.
	uint64_t left = frame_bytes_;
	for (uint16_t i = 0; i < buffers; ++i) {
		const Chain &chain = held_.front();
		const uint64_t length = std::min(left, chain.writable_bytes);
		// Fails only for a head past the queue size, which pop never returns.
		(void)receive_->add_used(chain.head, static_cast<uint32_t>(length));
		left -= length;
		held_bytes_ -= chain.writable_bytes;
		held_.pop_front();
	}
	receive_->publish_used();
	receive_used_ = true;
	count(counters_.requests);
	count(counters_.bytes_read, frame_bytes_ - sizeof(NetHeader));
	frame_bytes_ = 0;
	return true;
}

bool Net::serve_transmit()
{
	if (!transmit_ || broken_)
		return false;
	if (transmit_waiting_) {
		if (!transmit(*transmit_waiting_))
			return false;
		transmit_waiting_.reset();
	}
	for (int turn = 0; turn < kFramesPerTurn; ++turn) {
		if (broken_)
			return false;
		auto chain = pop(*transmit_);
		if (!chain)
			return false;
		if (!transmit(*chain)) {
			transmit_waiting_ = std::move(chain);
			return false;
		}
	}
	return true;
}

bool Net::transmit(const Chain &chain)
{
	// Section 5.1.6.2: a transmit chain is the header and the frame, all
	// device-readable. Anything else is this request's error only.
	if (chain.writable_bytes != 0 || chain.readable_bytes <= sizeof(NetHeader) ||
	    chain.readable_bytes > kMaxFrameBytes) {
		count(counters_.errors);
		push_used(*transmit_, transmit_used_, chain.head, 0);
		return true;
	}
	const ChainBytes readable(ram_, chain, ChainBytes::Part::Readable);
	std::vector<iovec> iovecs;
	iovecs.reserve(chain.buffers.size());
	if (!readable.iovecs(0, chain.readable_bytes, iovecs).ok()) {
		count(counters_.errors);
		push_used(*transmit_, transmit_used_, chain.head, 0);
		return true;
	}
	const ssize_t sent = writev(frames_.get(), iovecs.data(), static_cast<int>(iovecs.size()));
	if (sent < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (sent < 0) {
		// The TAP refused the frame (a header it rejects, the link
		// gone): dropped, the driver gets its buffer back.
		count(counters_.errors);
	} else {
		count(counters_.requests);
		count(counters_.bytes_written, chain.readable_bytes - sizeof(NetHeader));
	}
	push_used(*transmit_, transmit_used_, chain.head, 0);
	return true;
}

void Net::signal_used()
{
	if (!interrupt_)
		return;
	bool raise = false;
	for (auto [queue, pending] : {std::pair{&receive_, &receive_used_}, std::pair{&transmit_, &transmit_used_}}) {
		if (!*pending || !*queue)
			continue;
		*pending = false;
		const uint64_t suppressed = (*queue)->interrupts_suppressed();
		raise |= (*queue)->needs_interrupt();
		count(counters_.interrupts_suppressed, (*queue)->interrupts_suppressed() - suppressed);
	}
	if (raise) {
		count(counters_.interrupts);
		interrupt_->used_buffers();
	}
}

}  // namespace

std::array<uint8_t, 6> generated_mac(const NetOptions &options)
{
	uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
	for (char c : options.id + "/" + options.tap)
		hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
	std::array<uint8_t, 6> mac = {0x02};
	for (size_t i = 1; i < mac.size(); ++i)
		mac[i] = static_cast<uint8_t>(hash >> (8 * i));
	return mac;
}

unsigned tap_offloads(uint64_t acked)
{
	unsigned offloads = 0;
	if (acked & kNetGuestCsum) {
		offloads |= TUN_F_CSUM;
		if (acked & kNetGuestTso4)
			offloads |= TUN_F_TSO4;
		if (acked & kNetGuestTso6)
			offloads |= TUN_F_TSO6;
	}
	return offloads;
}

Result<std::shared_ptr<VirtioDevice>> make_net_device(const GuestRam &ram, std::string id, std::array<uint8_t, 6> mac,
						      UniqueFd frames, FrameEndpoint endpoint)
{
	auto receive_notify = EventFd::create(EventFd::Mode::NonBlocking, "virtio-net receive notifications");
	if (!receive_notify)
		return receive_notify.error();
	auto transmit_notify = EventFd::create(EventFd::Mode::NonBlocking, "virtio-net transmit notifications");
	if (!transmit_notify)
		return transmit_notify.error();
	auto control = EventFd::create(EventFd::Mode::NonBlocking, "virtio-net control");
	if (!control)
		return control.error();
	return std::shared_ptr<VirtioDevice>(std::make_shared<Net>(
		ram, std::move(id), mac, std::move(frames), endpoint, std::move(receive_notify).value(),
		std::move(transmit_notify).value(), std::move(control).value()));
}

Result<std::shared_ptr<VirtioDevice>> open_net(const GuestRam &ram, const NetOptions &options)
{
	auto tap = open_tap(options.tap);
	if (!tap)
		return tap.error();
	return make_net_device(ram, options.id, options.mac.value_or(generated_mac(options)), std::move(tap).value(),
			       FrameEndpoint::Tap);
}

}  // namespace kairos::devices::virtio
