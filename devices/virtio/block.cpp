#include "devices/virtio/block.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/io_uring.h"
#include "base/unique_fd.h"
#include "devices/virtio/chain_bytes.h"
#include "devices/virtio/device_thread.h"

namespace kairos::devices::virtio {

namespace {

constexpr uint16_t kQueueMaxSize = 256;
constexpr uint64_t kSectorSize = 512;  // section 5.2.6: sectors are always 512 bytes

// Feature bits (section 5.2.3).
constexpr uint64_t kBlkSegMax = 1ULL << 2;   // VIRTIO_BLK_F_SEG_MAX
constexpr uint64_t kBlkRo = 1ULL << 5;       // VIRTIO_BLK_F_RO
constexpr uint64_t kBlkBlkSize = 1ULL << 6;  // VIRTIO_BLK_F_BLK_SIZE
constexpr uint64_t kBlkFlush = 1ULL << 9;    // VIRTIO_BLK_F_FLUSH

// Request types and status values (section 5.2.6).
constexpr uint32_t kTypeIn = 0;
constexpr uint32_t kTypeOut = 1;
constexpr uint32_t kTypeFlush = 4;
constexpr uint32_t kTypeGetId = 8;
constexpr uint8_t kStatusOk = 0;
constexpr uint8_t kStatusIoErr = 1;
constexpr uint8_t kStatusUnsupported = 2;
constexpr size_t kIdBytes = 20;  // VIRTIO_BLK_ID_BYTES

// Section 5.2.6: struct virtio_blk_req's header.
struct RequestHeader {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};
static_assert(sizeof(RequestHeader) == 16);

// Section 5.2.4: struct virtio_blk_config, up to blk_size (the fields the
// offered features give meaning to; the rest reads as zero).
struct [[gnu::packed]] BlockConfig {
	uint64_t capacity;  // in 512-byte sectors
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
};
static_assert(sizeof(BlockConfig) == 24);

// io_uring user_data of the two eventfd polls; requests use their slot.
constexpr uint64_t kNotifyTag = ~uint64_t{0};
constexpr uint64_t kControlTag = ~uint64_t{0} - 1;

// One request in flight: the chain's head, where its status byte is, and
// the I/O still to do (readv/writev may complete short; the rest is
// submitted again).
struct Request {
	uint16_t head = 0;
	uint8_t *status = nullptr;  // the chain's last writable byte, in guest RAM
	uint32_t type = 0;
	uint64_t data_bytes = 0;
	uint64_t offset = 0;     // image byte offset of the next I/O
	uint64_t remaining = 0;  // bytes still to transfer
	std::vector<iovec> iovecs;
	size_t first_iovec = 0;
};

// What activate hands to the device's thread.
struct Activation {
	SplitQueue queue;
	Interrupt *interrupt;
};

class Block : public VirtioDevice {
public:
	Block(const GuestRam &ram, BlockOptions options, UniqueFd image, uint64_t capacity, EventFd notify,
	      EventFd control)
		: ram_(ram), options_(std::move(options)), image_(std::move(image)), capacity_(capacity),
		  notify_(std::move(notify)), control_(std::move(control))
	{
	}
	~Block() override { stop(); }

	std::string name() const override { return "virtio-blk " + options_.id; }
	uint32_t device_type() const override { return kDeviceTypeBlock; }
	uint64_t features() const override
	{
		return kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | kBlkFlush | kBlkSegMax |
		       kBlkBlkSize | (options_.read_only ? kBlkRo : 0);
	}
	uint16_t queue_count() const override { return 1; }
	uint16_t queue_max_size() const override { return kQueueMaxSize; }

	void read_config(uint64_t offset, std::span<uint8_t> data) const override;
	void write_config(uint64_t, std::span<const uint8_t>) override {}  // no writable field offered

	Status activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt) override;
	void reset() override;
	int notify_fd(uint16_t index) const override { return index == 0 ? notify_.fd() : -1; }
	void notify(uint16_t index) override
	{
		if (index == 0)
			notify_.signal();
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
	// Waits for every request in flight, dropping their results.
	void drain();
	// Takes every completion the ring holds: re-arms the notify and
	// control polls, and hands I/O completions to complete(), or when
	// their results are no longer wanted (draining) only frees their
	// slots. True when the control eventfd fired.
	bool reap(bool keep_results);
	// Pops and starts requests while slots are free.
	void fill();
	void start_request(Chain chain);
	void complete(uint64_t slot, int result);
	void finish(uint16_t head, uint8_t *status, uint8_t value, uint32_t written);
	void malformed();
	void signal_used();
	void submit_io(uint16_t slot);
	void release(uint16_t slot);

	const GuestRam &ram_;
	const BlockOptions options_;
	const UniqueFd image_;
	const uint64_t capacity_;  // sectors
	const EventFd notify_;
	// Wakes the thread for reset, activation and stop.
	const EventFd control_;
	DeviceCounters counters_;

	// Shared between the thread and its callers (vCPU threads, main), under
	// thread_.mutex().
	DeviceThread thread_{name()};
	std::optional<Activation> pending_;

	std::optional<IoUring> ring_;

	// The thread's own state.
	std::optional<SplitQueue> queue_;
	Interrupt *interrupt_ = nullptr;
	bool broken_ = false;  // a malformed chain: the queue is not served until reset
	bool used_pending_ = false;
	std::vector<Request> slots_;
	std::vector<uint16_t> free_slots_;
	size_t in_flight_ = 0;
};

void Block::read_config(uint64_t offset, std::span<uint8_t> data) const
{
	BlockConfig config = {};
	config.capacity = capacity_;
	config.seg_max = kQueueMaxSize - 2;  // header and status take a descriptor each
	config.blk_size = kSectorSize;
	const auto *bytes = reinterpret_cast<const uint8_t *>(&config);
	for (size_t i = 0; i < data.size(); ++i)
		data[i] = offset + i < sizeof(config) ? bytes[offset + i] : 0;
}

Status Block::activate(uint64_t acked, std::vector<QueueConfig> queues, Interrupt &interrupt)
{
	(void)acked;  // the queue configs already carry EVENT_IDX and INDIRECT_DESC
	if (queues.size() != 1 || queues[0].size == 0)
		return make_error("{}: the driver did not set up queue 0", name());
	auto queue = SplitQueue::create(ram_, queues[0]);
	if (!queue)
		return make_error("{}: {}", name(), queue.error().message);
	{
		std::lock_guard lock(thread_.mutex());
		pending_.emplace(Activation{std::move(queue).value(), &interrupt});
	}
	control_.signal();
	return {};
}

void Block::reset()
{
	thread_.request_reset(control_, [this] { pending_.reset(); });
}

Status Block::start(std::function<Status()> confine_thread)
{
	if (!ring_) {
		// Requests in flight, the two polls, and a resubmission.
		auto ring = IoUring::create(kQueueMaxSize + 4, name().c_str(),
					    {IORING_OP_POLL_ADD, IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC});
		if (!ring)
			return ring.error();
		ring_.emplace(std::move(ring).value());
	}
	return thread_.start(std::move(confine_thread), {
								.serve = [this] { serve(); },
								.lost = [this] { lost(); },
								.finish =
									[this] {
										queue_.reset();
										interrupt_ = nullptr;
									},
							});
}

void Block::stop()
{
	thread_.stop(control_);
}

DeviceStats Block::stats() const
{
	return counters_.snapshot();
}

void Block::lost()
{
	count(counters_.errors);
	if (interrupt_)
		interrupt_->needs_reset();
}

void Block::serve()
{
	ring_->poll_add(notify_.fd(), POLLIN, kNotifyTag);
	ring_->poll_add(control_.fd(), POLLIN, kControlTag);
	// Requests parked in the eventfds before start() are served too.
	if (!handle_control())
		return;
	for (;;) {
		fill();
		signal_used();
		const int submitted = io_uring_submit_and_wait(ring_->get(), 1);
		if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN && submitted != -EBUSY) {
			// The ring itself failed: nothing can be served any more.
			count(counters_.errors);
			if (interrupt_)
				interrupt_->needs_reset();
			drain();
			return;
		}
		const bool control = reap(true);
		signal_used();
		if (control && !handle_control())
			return;
	}
}

bool Block::handle_control()
{
	std::unique_lock lock(thread_.mutex());
	for (;;) {
		if (thread_.stop_requested()) {
			lock.unlock();
			drain();
			return false;
		}
		if (!thread_.reset_pending()) {
			if (!pending_ || !queue_)
				break;
			// The transport resets between activations; should one
			// come anyway, the old queue's I/O ends before its slots go.
			lock.unlock();
			drain();
			queue_.reset();
			lock.lock();
			continue;
		}
		// Section 2.1.2 reset: finish with the queue before reset()
		// returns; requests in flight complete, their results dropped.
		const uint64_t target = thread_.reset_requests();
		lock.unlock();
		drain();
		queue_.reset();
		interrupt_ = nullptr;
		broken_ = false;
		used_pending_ = false;
		lock.lock();
		thread_.reset_done(target);
	}
	if (pending_) {
		queue_.emplace(std::move(pending_->queue));
		interrupt_ = pending_->interrupt;
		pending_.reset();
		broken_ = false;
		used_pending_ = false;
		const uint16_t size = queue_->config().size;
		slots_.assign(size, Request{});
		free_slots_.clear();
		for (uint16_t slot = size; slot > 0; --slot)
			free_slots_.push_back(static_cast<uint16_t>(slot - 1));
		in_flight_ = 0;
	}
	return true;
}

void Block::drain()
{
	while (in_flight_ > 0) {
		const int submitted = io_uring_submit_and_wait(ring_->get(), 1);
		if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN && submitted != -EBUSY)
			return;  // the kernel cancels what is left when the ring is closed
		// A control request seen here is read under the lock after draining.
		reap(false);
	}
}

bool Block::reap(bool keep_results)
{
	bool control = false;
	ring_->reap([&](uint64_t tag, int result) {
		if (tag == kControlTag) {
			control_.consume();
			ring_->poll_add(control_.fd(), POLLIN, kControlTag);
			control = true;
		} else if (tag == kNotifyTag) {
			count(counters_.notifications, notify_.consume());
			ring_->poll_add(notify_.fd(), POLLIN, kNotifyTag);
		} else if (keep_results) {
			complete(tag, result);
		} else if (tag < slots_.size()) {
			release(static_cast<uint16_t>(tag));
		}
	});
	return control;
}

void Block::fill()
{
	if (!queue_ || broken_)
		return;
	while (!free_slots_.empty()) {
		auto chain = queue_->pop();
		if (!chain) {
			malformed();
			return;
		}
		if (!chain->has_value()) {
			// Publish avail_event, then look again: a chain made
			// available meanwhile came without a notification.
			auto more = queue_->enable_notifications();
			if (!more) {
				malformed();
				return;
			}
			if (!*more)
				return;
			continue;
		}
		start_request(std::move(**chain));
	}
}

void Block::malformed()
{
	// Section 2.1.2: the guest broke the ring; stop serving it until the
	// driver resets the device.
	count(counters_.errors);
	broken_ = true;
	if (interrupt_)
		interrupt_->needs_reset();
}

void Block::finish(uint16_t head, uint8_t *status, uint8_t value, uint32_t written)
{
	if (status)
		*status = value;
	if (value != kStatusOk)
		count(counters_.errors);
	// Fails only for a head past the queue size, which pop never returns.
	(void)queue_->push_used(head, written);
	used_pending_ = true;
}

void Block::start_request(Chain chain)
{
	count(counters_.requests);
	const ChainBytes readable(ram_, chain, ChainBytes::Part::Readable);
	const ChainBytes writable(ram_, chain, ChainBytes::Part::Writable);
	if (writable.size() == 0) {
		// No status byte to answer in: the driver gets the chain back
		// with nothing written.
		finish(chain.head, nullptr, kStatusIoErr, 0);
		return;
	}
	const Buffer &last = chain.buffers.back();
	auto status_view = ram_.slice(last.gpa + last.length - 1, 1);
	uint8_t *status = status_view ? status_view->data() : nullptr;

	RequestHeader header;
	if (!readable.copy_out(0, {reinterpret_cast<uint8_t *>(&header), sizeof(header)}).ok()) {
		finish(chain.head, status, kStatusIoErr, 1);
		return;
	}
	const uint64_t data_out = readable.size() - sizeof(header);  // for OUT
	const uint64_t data_in = writable.size() - 1;                // for IN and GET_ID

	switch (header.type) {
	case kTypeIn:
	case kTypeOut: {
		const bool in = header.type == kTypeIn;
		const uint64_t bytes = in ? data_in : data_out;
		if ((!in && options_.read_only) || bytes % kSectorSize != 0 || header.sector > capacity_ ||
		    bytes / kSectorSize > capacity_ - header.sector) {
			finish(chain.head, status, kStatusIoErr, 1);
			return;
		}
		if (bytes == 0) {
			finish(chain.head, status, kStatusOk, 1);
			return;
		}
		const uint16_t slot = free_slots_.back();
		Request &request = slots_[slot];
		request.iovecs.clear();
		const Status mapped = in ? writable.iovecs(0, bytes, request.iovecs)
					 : readable.iovecs(sizeof(header), bytes, request.iovecs);
		if (!mapped.ok()) {
			finish(chain.head, status, kStatusIoErr, 1);
			return;
		}
		free_slots_.pop_back();
		++in_flight_;
		request.head = chain.head;
		request.status = status;
		request.type = header.type;
		request.data_bytes = bytes;
		request.offset = header.sector * kSectorSize;
		request.remaining = bytes;
		request.first_iovec = 0;
		submit_io(slot);
		return;
	}
	case kTypeFlush: {
		const uint16_t slot = free_slots_.back();
		io_uring_sqe *sqe = ring_->next_sqe();
		if (!sqe) {
			finish(chain.head, status, kStatusIoErr, 1);
			return;
		}
		free_slots_.pop_back();
		++in_flight_;
		Request &request = slots_[slot];
		request.head = chain.head;
		request.status = status;
		request.type = header.type;
		// A real fdatasync: the guest's flush promises durability.
		io_uring_prep_fsync(sqe, image_.get(), IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, slot);
		return;
	}
	case kTypeGetId: {
		// Section 5.2.6: up to 20 bytes, zero-padded, not terminated
		// when the id fills them.
		std::array<uint8_t, kIdBytes> id = {};
		std::memcpy(id.data(), options_.id.data(), std::min(options_.id.size(), kIdBytes));
		const size_t length = std::min<uint64_t>(data_in, kIdBytes);
		if (!writable.copy_in(0, {id.data(), length}).ok()) {
			finish(chain.head, status, kStatusIoErr, 1);
			return;
		}
		finish(chain.head, status, kStatusOk, static_cast<uint32_t>(length + 1));
		return;
	}
	default:
		finish(chain.head, status, kStatusUnsupported, 1);
		return;
	}
}

void Block::submit_io(uint16_t slot)
{
	Request &request = slots_[slot];
	io_uring_sqe *sqe = ring_->next_sqe();
	if (!sqe) {
		release(slot);
		finish(request.head, request.status, kStatusIoErr, 1);
		return;
	}
	const iovec *iovecs = request.iovecs.data() + request.first_iovec;
	const unsigned count =
		static_cast<unsigned>(std::min<size_t>(request.iovecs.size() - request.first_iovec, IOV_MAX));
	if (request.type == kTypeIn)
		io_uring_prep_readv(sqe, image_.get(), iovecs, count, request.offset);
	else
		io_uring_prep_writev(sqe, image_.get(), iovecs, count, request.offset);
	io_uring_sqe_set_data64(sqe, slot);
}

void Block::release(uint16_t slot)
{
	free_slots_.push_back(slot);
	--in_flight_;
}

void Block::complete(uint64_t tag, int result)
{
	if (tag >= slots_.size())
		return;
	const auto slot = static_cast<uint16_t>(tag);
	Request &request = slots_[slot];
	if (request.type == kTypeFlush) {
		release(slot);
		finish(request.head, request.status, result < 0 ? kStatusIoErr : kStatusOk, 1);
		return;
	}
	if (result <= 0) {
		// An error, or end of file where the image had data (it shrank).
		release(slot);
		finish(request.head, request.status, kStatusIoErr, 1);
		return;
	}
	auto done = static_cast<uint64_t>(result);
	request.remaining -= std::min(done, request.remaining);
	request.offset += done;
	if (request.remaining > 0) {
		// Short transfer: skip what was done and submit the rest.
		while (done > 0 && request.first_iovec < request.iovecs.size()) {
			iovec &vec = request.iovecs[request.first_iovec];
			const uint64_t step = std::min<uint64_t>(done, vec.iov_len);
			vec.iov_base = static_cast<uint8_t *>(vec.iov_base) + step;
			vec.iov_len -= step;
			done -= step;
			if (vec.iov_len == 0)
				++request.first_iovec;
		}
		submit_io(slot);
		return;
	}
	const bool in = request.type == kTypeIn;
	count(in ? counters_.bytes_read : counters_.bytes_written, request.data_bytes);
	release(slot);
	finish(request.head, request.status, kStatusOk, static_cast<uint32_t>(in ? request.data_bytes + 1 : 1));
}

void Block::signal_used()
{
	if (!used_pending_ || !queue_ || !interrupt_)
		return;
	used_pending_ = false;
	const uint64_t suppressed = queue_->interrupts_suppressed();
	if (queue_->needs_interrupt()) {
		count(counters_.interrupts);
		interrupt_->used_buffers();
	}
	count(counters_.interrupts_suppressed, queue_->interrupts_suppressed() - suppressed);
}

Error drive_error(const BlockOptions &options, const std::string &why)
{
	return make_error("drive '{}': {}: {}", options.id, options.path, why);
}

}  // namespace

Result<BlockImage> open_block_image(const BlockOptions &options)
{
	int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
	if (options.cache == BlockOptions::Cache::None)
		flags |= O_DIRECT;
	UniqueFd image(open(options.path.c_str(), flags));
	if (!image) {
		const int saved = errno;
		if (saved == EINVAL && (flags & O_DIRECT))
			return drive_error(options, "its filesystem refuses O_DIRECT (cache \"none\"); use cache "
						    "\"writeback\"");
		return drive_error(options, strerror(saved));
	}
	struct stat info = {};
	if (fstat(image.get(), &info) != 0)
		return drive_error(options, fmt::format("fstat: {}", strerror(errno)));
	uint64_t bytes = 0;
	if (S_ISREG(info.st_mode)) {
		bytes = static_cast<uint64_t>(info.st_size);
	} else if (S_ISBLK(info.st_mode)) {
		if (ioctl(image.get(), BLKGETSIZE64, &bytes) != 0)
			return drive_error(options, fmt::format("BLKGETSIZE64: {}", strerror(errno)));
	} else {
		return drive_error(options, "not a regular file or block device");
	}
	if (bytes % kSectorSize != 0)
		return drive_error(options, fmt::format("its size, {} bytes, is not a multiple of 512", bytes));
	// Shared for read-only drives: many readers, or one writer.
	if (flock(image.get(), (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			return make_error("drive '{}': {} is locked by another process", options.id, options.path);
		return drive_error(options, fmt::format("flock: {}", strerror(errno)));
	}
	return BlockImage{options, std::move(image), bytes / kSectorSize};
}

Result<std::shared_ptr<VirtioDevice>> make_block(const GuestRam &ram, BlockImage image)
{
	auto notify = EventFd::create(EventFd::Mode::NonBlocking, "virtio-blk queue notifications");
	if (!notify)
		return notify.error();
	auto control = EventFd::create(EventFd::Mode::NonBlocking, "virtio-blk control");
	if (!control)
		return control.error();
	return std::shared_ptr<VirtioDevice>(std::make_shared<Block>(ram, std::move(image.options), std::move(image.fd),
								     image.sectors, std::move(notify).value(),
								     std::move(control).value()));
}

Result<std::shared_ptr<VirtioDevice>> open_block(const GuestRam &ram, const BlockOptions &options)
{
	KAIROS_TRY_ASSIGN(image, open_block_image(options));
	return make_block(ram, std::move(image));
}

}  // namespace kairos::devices::virtio
