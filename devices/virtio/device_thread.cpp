#include "devices/virtio/device_thread.h"

#include <exception>
#include <system_error>
#include <utility>

namespace kairos::devices::virtio {

DeviceThread::~DeviceThread()
{
	if (thread_.joinable())
		thread_.join();
}

Status DeviceThread::start(std::function<Status()> confine, Work work)
{
	if (thread_.joinable())
		return make_error("{}: already started", name_);
	{
		std::lock_guard lock(mutex_);
		started_ = false;
		stop_requested_ = false;
	}
	try {
		thread_ = std::thread(
			[this, confine = std::move(confine), work = std::move(work)] { run(confine, work); });
	} catch (const std::system_error &error) {
		return make_error("{}: starting its thread: {}", name_, error.what());
	}
	std::unique_lock lock(mutex_);
	changed_.wait(lock, [this] { return started_; });
	if (!start_status_.ok()) {
		Status failed = start_status_;
		lock.unlock();
		thread_.join();
		return failed;
	}
	return {};
}

void DeviceThread::stop(const EventFd &wake)
{
	{
		std::lock_guard lock(mutex_);
		stop_requested_ = true;
	}
	wake.signal();
	if (thread_.joinable())
		thread_.join();
}

void DeviceThread::request_reset(const EventFd &wake, const std::function<void()> &drop_pending)
{
	std::unique_lock lock(mutex_);
	drop_pending();
	if (!running_)
		return;
	const uint64_t target = ++reset_requests_;
	wake.signal();
	changed_.wait(lock, [&] { return resets_done_ >= target || !running_; });
}

void DeviceThread::reset_done(uint64_t requests)
{
	resets_done_ = requests;
	changed_.notify_all();
}

void DeviceThread::run(const std::function<Status()> &confine, const Work &work)
{
	Status confined;
	try {
		if (confine)
			confined = confine();
	} catch (const std::exception &error) {
		confined = make_error("{}: confining its thread: {}", name_, error.what());
	}
	{
		std::lock_guard lock(mutex_);
		start_status_ = confined;
		started_ = true;
		running_ = confined.ok();
	}
	changed_.notify_all();
	if (!confined.ok())
		return;
	try {
		work.serve();
	} catch (const std::exception &) {
		// Only allocation throws in a device's loop: the queues are lost
		// and the driver is told; the process goes on.
		work.lost();
	}
	work.finish();
	{
		std::lock_guard lock(mutex_);
		running_ = false;
	}
	changed_.notify_all();
}

DeviceStats DeviceCounters::snapshot() const
{
	DeviceStats stats;
	stats.requests = requests.load(std::memory_order_relaxed);
	stats.bytes_read = bytes_read.load(std::memory_order_relaxed);
	stats.bytes_written = bytes_written.load(std::memory_order_relaxed);
	stats.errors = errors.load(std::memory_order_relaxed);
	stats.notifications = notifications.load(std::memory_order_relaxed);
	stats.interrupts = interrupts.load(std::memory_order_relaxed);
	stats.interrupts_suppressed = interrupts_suppressed.load(std::memory_order_relaxed);
	return stats;
}

}  // namespace kairos::devices::virtio
