// TimerHeap: one VM's outsourced timers, a binary min-heap of deadlines
// (DESIGN.md 5: one heap and one timerfd per VM, so a million timers cost
// O(log n) each rather than a million fds).
//
// The heap holds (deadline, slot); a slot is a timer's stable home, holding
// its id and its current heap position, so moving an entry during a sift is
// a plain store rather than a hash-map update. The id -> slot map is touched
// once per operation. Size is bounded by a quota fixed at construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace kairos::outsourcing {

// Default of the config value outsourcing.max_timers.
inline constexpr size_t kDefaultMaxTimers = 65536;
// A timer that names no vCPU (kairos_abi.h KAIROS_VCPU_ANY).
inline constexpr uint16_t kAnyVcpu = 0xffff;

class TimerHeap {
public:
	explicit TimerHeap(size_t quota = kDefaultMaxTimers) : quota_(quota) {}

	enum class ArmResult { Added, Rearmed, OverQuota };
	// Arms `id` at `deadline_ns`; an armed id is re-armed (its old deadline
	// is forgotten). A new id beyond the quota is refused. `vcpu` is the
	// vCPU that consumes the expiry (kAnyVcpu: none named), for windows.
	ArmResult arm(uint32_t id, uint64_t deadline_ns, uint16_t vcpu = kAnyVcpu);
	// Disarms `id`; false if it was not armed.
	bool cancel(uint32_t id);

	bool contains(uint32_t id) const { return slot_of_.contains(id); }
	std::optional<uint64_t> deadline_of(uint32_t id) const;
	// The earliest deadline, if any timer is armed.
	std::optional<uint64_t> earliest() const;
	// The vCPU named by the timer with the earliest deadline (kAnyVcpu if
	// none is armed or it named none).
	uint16_t earliest_vcpu() const;

	// Disarms every timer whose deadline is <= now, earliest first, calling
	// callback(id, deadline_ns) or callback(id, deadline_ns, vcpu) for
	// each; returns how many. The callback
	// may not touch the heap.
	template <typename Callback>
	size_t pop_expired(uint64_t now_ns, Callback &&callback)
	{
		size_t popped = 0;
		while (!heap_.empty() && heap_.front().deadline_ns <= now_ns) {
			Entry entry = heap_.front();
			uint32_t id = slots_[entry.slot].id;
			uint16_t vcpu = slots_[entry.slot].vcpu;
			remove_at(0);
			if constexpr (std::is_invocable_v<Callback, uint32_t, uint64_t, uint16_t>)
				callback(id, entry.deadline_ns, vcpu);
			else
				callback(id, entry.deadline_ns);
			++popped;
		}
		return popped;
	}

	size_t size() const { return heap_.size(); }
	bool empty() const { return heap_.empty(); }
	size_t quota() const { return quota_; }
	void clear();

private:
	struct Entry {
		uint64_t deadline_ns;
		uint32_t slot;
	};
	struct Slot {
		uint32_t id;
		uint32_t position;  // index into heap_
		uint16_t vcpu;
	};

	void place(size_t position, Entry entry);
	void sift_up(size_t position);
	void sift_down(size_t position);
	// Removes heap_[position], frees its slot and forgets its id.
	void remove_at(size_t position);

	size_t quota_;
	std::vector<Entry> heap_;
	std::vector<Slot> slots_;
	std::vector<uint32_t> free_slots_;
	std::unordered_map<uint32_t, uint32_t> slot_of_;  // id -> slot
};

}  // namespace kairos::outsourcing
