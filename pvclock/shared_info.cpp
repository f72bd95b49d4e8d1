#include "pvclock/shared_info.h"

#include <atomic>
#include <cstring>

namespace kairos::pvclock {
namespace {

template <typename T>
std::atomic_ref<T> atomic(T &field)
{
	return std::atomic_ref<T>(field);
}

// The guest reads these with plain loads between version reads; the host's
// stores must be single-copy atomic and ordered (release) after the odd
// version, before the even one.
template <typename T, typename V>
void store(T &field, V value)
{
	atomic(field).store(static_cast<T>(value), std::memory_order_relaxed);
}

}  // namespace

SharedInfo::SharedInfo(std::span<uint8_t> page, uint32_t vcpu_count)
	: info_(reinterpret_cast<kairos_shared_info *>(page.data())),
	  vcpu_count_(vcpu_count < KAIROS_MAX_VCPUS ? vcpu_count : KAIROS_MAX_VCPUS)
{
}

void SharedInfo::initialise()
{
	store(info_->abi_version, KAIROS_ABI_VERSION);
	store(info_->vcpu_count, vcpu_count_);
}

void SharedInfo::publish_time(uint32_t vcpu, const TimeRecord &record)
{
	if (vcpu >= vcpu_count_)
		return;
	kairos_vcpu_time_info &time = info_->time[vcpu];
	// Forced odd even if the guest scribbled an odd value into it, so
	// the closing store always leaves an even version behind.
	uint32_t version = atomic(time.version).load(std::memory_order_relaxed) | 1;
	atomic(time.version).store(version, std::memory_order_relaxed);
	std::atomic_thread_fence(std::memory_order_release);
	store(time.tsc_timestamp, record.tsc_timestamp);
	store(time.system_time, record.system_time);
	store(time.tsc_to_system_mul, record.scale.mul);
	store(time.tsc_shift, record.scale.shift);
	store(time.flags, record.flags);
	std::atomic_thread_fence(std::memory_order_release);
	atomic(time.version).store(version + 1, std::memory_order_release);  // even: done
}

void SharedInfo::publish_wall_clock(uint64_t seconds, uint32_t nanoseconds)
{
	uint32_t version = atomic(info_->wc_version).load(std::memory_order_relaxed) | 1;
	atomic(info_->wc_version).store(version, std::memory_order_relaxed);
	std::atomic_thread_fence(std::memory_order_release);
	store(info_->wc_sec, seconds);
	store(info_->wc_nsec, nanoseconds);
	std::atomic_thread_fence(std::memory_order_release);
	atomic(info_->wc_version).store(version + 1, std::memory_order_release);
}

void SharedInfo::publish_stolen(uint32_t vcpu, uint64_t stolen_ns)
{
	if (vcpu < vcpu_count_)
		store(info_->stolen_ns[vcpu], stolen_ns);
}

void SharedInfo::count_publish()
{
	atomic(info_->publish_count).fetch_add(1, std::memory_order_relaxed);
}

bool SharedInfo::raise(uint32_t port)
{
	if (port >= KAIROS_EVENT_PORTS)
		return false;
	const uint32_t word = port / 64;
	const uint64_t bit = 1ULL << (port % 64);
	if (atomic(info_->pending[word]).fetch_or(bit, std::memory_order_acq_rel) & bit)
		return false;  // already pending: the guest has yet to see the first
	if (atomic(info_->mask[word]).load(std::memory_order_acquire) & bit)
		return false;  // masked: the guest finds it when it unmasks
	atomic(info_->pending_sel).fetch_or(1ULL << word, std::memory_order_acq_rel);
	if (atomic(info_->upcall_pending).exchange(1, std::memory_order_acq_rel))
		return false;  // an upcall is already on its way
	return atomic(info_->upcall_mask).load(std::memory_order_acquire) == 0;
}

TimeRecord read_time(const kairos_shared_info &info, uint32_t vcpu)
{
	auto &time = const_cast<kairos_vcpu_time_info &>(info.time[vcpu]);
	TimeRecord record{};
	uint32_t before, after;
	do {
		before = atomic(time.version).load(std::memory_order_acquire);
		record.tsc_timestamp = atomic(time.tsc_timestamp).load(std::memory_order_relaxed);
		record.system_time = atomic(time.system_time).load(std::memory_order_relaxed);
		record.scale.mul = atomic(time.tsc_to_system_mul).load(std::memory_order_relaxed);
		record.scale.shift = atomic(time.tsc_shift).load(std::memory_order_relaxed);
		record.flags = atomic(time.flags).load(std::memory_order_relaxed);
		std::atomic_thread_fence(std::memory_order_acquire);
		after = atomic(time.version).load(std::memory_order_relaxed);
	} while ((before & 1) || before != after);
	return record;
}

uint64_t system_time_at(const TimeRecord &record, uint64_t tsc)
{
	return record.system_time + scale_delta(tsc - record.tsc_timestamp, record.scale);
}

}  // namespace kairos::pvclock
