#include "pvclock/time_service.h"

#include <time.h>

#include <algorithm>

#include "base/clock.h"

namespace kairos::pvclock {
namespace {

// CLOCK_REALTIME - CLOCK_MONOTONIC: the wall-clock time of system time zero.
timespec wall_clock_at_boot()
{
	uint64_t monotonic = monotonic_now_ns();
	uint64_t realtime = clock_now_ns(CLOCK_REALTIME);
	return ns_to_timespec(realtime > monotonic ? realtime - monotonic : 0);
}

}  // namespace

TimeService::TimeService(uint64_t tsc_hz, std::vector<int64_t> tsc_offsets)
	: clock_(tsc_hz), tsc_offsets_(std::move(tsc_offsets))
{
	// With one TSC offset for all vCPUs, guest TSCs agree across CPUs and
	// the guest may skip its cross-CPU monotonic guard.
	bool same = std::adjacent_find(tsc_offsets_.begin(), tsc_offsets_.end(), std::not_equal_to<>()) ==
		    tsc_offsets_.end();
	flags_ = same ? KAIROS_TIME_TSC_STABLE : 0;
}

void TimeService::set_vcpu_threads(ThreadIdOf thread_id_of)
{
	std::lock_guard lock(mutex_);
	thread_id_of_ = std::move(thread_id_of);
}

void TimeService::attach(SharedInfo *page)
{
	std::vector<uint64_t> run_delays = read_run_delays();
	std::lock_guard lock(mutex_);
	page_ = page;
	publish_locked(run_delays);
}

void TimeService::detach()
{
	std::lock_guard lock(mutex_);
	page_ = nullptr;
}

std::vector<uint64_t> TimeService::read_run_delays() const
{
	ThreadIdOf thread_id_of;
	{
		std::lock_guard lock(mutex_);
		thread_id_of = thread_id_of_;
	}
	std::vector<uint64_t> run_delays;
	if (!thread_id_of)
		return run_delays;
	for (uint32_t vcpu = 0; vcpu < tsc_offsets_.size(); ++vcpu) {
		uint64_t thread_id = thread_id_of(vcpu);
		run_delays.push_back(thread_id != 0 ? thread_run_delay_ns(thread_id) : UINT64_MAX);
	}
	return run_delays;
}

void TimeService::publish()
{
	std::vector<uint64_t> run_delays = read_run_delays();
	std::lock_guard lock(mutex_);
	publish_locked(run_delays);
}

void TimeService::publish_time()
{
	std::lock_guard lock(mutex_);
	publish_locked({});
}

void TimeService::publish_locked(const std::vector<uint64_t> &run_delays)
{
	if (!page_)
		return;
	ClockReading anchor = clock_.refresh();
	for (uint32_t vcpu = 0; vcpu < tsc_offsets_.size(); ++vcpu) {
		TimeRecord record{anchor.tsc + static_cast<uint64_t>(tsc_offsets_[vcpu]), anchor.monotonic_ns,
				  clock_.scale(), flags_};
		page_->publish_time(vcpu, record);
		// UINT64_MAX: the vCPU thread had not started; nothing to say.
		if (vcpu < run_delays.size() && run_delays[vcpu] != UINT64_MAX)
			page_->publish_stolen(vcpu, run_delays[vcpu] + paused_ns_.load());
	}
	timespec boot = wall_clock_at_boot();
	page_->publish_wall_clock(static_cast<uint64_t>(boot.tv_sec), static_cast<uint32_t>(boot.tv_nsec));
	page_->count_publish();
	publishes_.fetch_add(1);
	last_system_time_.store(anchor.monotonic_ns);
}

}  // namespace kairos::pvclock
