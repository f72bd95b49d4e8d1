#include "outsourcing/timer_heap.h"

namespace kairos::outsourcing {

TimerHeap::ArmResult TimerHeap::arm(uint32_t id, uint64_t deadline_ns, uint16_t vcpu)
{
	auto found = slot_of_.find(id);
	if (found != slot_of_.end()) {
		slots_[found->second].vcpu = vcpu;
		size_t position = slots_[found->second].position;
		uint64_t old_deadline = heap_[position].deadline_ns;
		heap_[position].deadline_ns = deadline_ns;
		if (deadline_ns < old_deadline)
			sift_up(position);
		else
			sift_down(position);
		return ArmResult::Rearmed;
	}
	if (heap_.size() >= quota_)
		return ArmResult::OverQuota;

	uint32_t slot;
	if (!free_slots_.empty()) {
		slot = free_slots_.back();
		free_slots_.pop_back();
	} else {
		slot = static_cast<uint32_t>(slots_.size());
		slots_.push_back({});
	}
	slots_[slot].id = id;
	slots_[slot].vcpu = vcpu;
	slot_of_.emplace(id, slot);
	heap_.push_back({});
	place(heap_.size() - 1, {deadline_ns, slot});
	sift_up(heap_.size() - 1);
	return ArmResult::Added;
}

bool TimerHeap::cancel(uint32_t id)
{
	auto found = slot_of_.find(id);
	if (found == slot_of_.end())
		return false;
	remove_at(slots_[found->second].position);
	return true;
}

std::optional<uint64_t> TimerHeap::deadline_of(uint32_t id) const
{
	auto found = slot_of_.find(id);
	if (found == slot_of_.end())
		return std::nullopt;
	return heap_[slots_[found->second].position].deadline_ns;
}

std::optional<uint64_t> TimerHeap::earliest() const
{
	if (heap_.empty())
		return std::nullopt;
	return heap_.front().deadline_ns;
}

uint16_t TimerHeap::earliest_vcpu() const
{
	return heap_.empty() ? kAnyVcpu : slots_[heap_.front().slot].vcpu;
}

void TimerHeap::clear()
{
	heap_.clear();
	slots_.clear();
	free_slots_.clear();
	slot_of_.clear();
}

void TimerHeap::place(size_t position, Entry entry)
{
	heap_[position] = entry;
	slots_[entry.slot].position = static_cast<uint32_t>(position);
}

void TimerHeap::sift_up(size_t position)
{
	Entry moving = heap_[position];
	while (position > 0) {
		size_t parent = (position - 1) / 2;
		if (heap_[parent].deadline_ns <= moving.deadline_ns)
			break;
		place(position, heap_[parent]);
		position = parent;
	}
	place(position, moving);
}

void TimerHeap::sift_down(size_t position)
{
	Entry moving = heap_[position];
	size_t size = heap_.size();
	for (;;) {
		size_t child = 2 * position + 1;
		if (child >= size)
			break;
		if (child + 1 < size && heap_[child + 1].deadline_ns < heap_[child].deadline_ns)
			++child;
		if (moving.deadline_ns <= heap_[child].deadline_ns)
			break;
		place(position, heap_[child]);
		position = child;
	}
	place(position, moving);
}

void TimerHeap::remove_at(size_t position)
{
	uint32_t slot = heap_[position].slot;
	slot_of_.erase(slots_[slot].id);
	free_slots_.push_back(slot);

	Entry last = heap_.back();
	heap_.pop_back();
	if (position == heap_.size())
		return;
	// The last entry fills the hole and moves whichever way restores order.
	place(position, last);
	if (position > 0 && heap_[(position - 1) / 2].deadline_ns > last.deadline_ns)
		sift_up(position);
	else
		sift_down(position);
}

}  // namespace kairos::outsourcing
