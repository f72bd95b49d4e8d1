#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "outsourcing/timer_heap.h"

using namespace kairos::outsourcing;

namespace {

struct Fired {
	uint32_t id;
	uint64_t deadline;
};

std::vector<Fired> pop_all(TimerHeap &heap, uint64_t now = UINT64_MAX)
{
	std::vector<Fired> fired;
	heap.pop_expired(now, [&](uint32_t id, uint64_t deadline) { fired.push_back({id, deadline}); });
	return fired;
}

}  // namespace

TEST_CASE("the heap pops due timers earliest first and keeps the rest", "[outsourcing][heap]")
{
	TimerHeap heap(100);
	CHECK_FALSE(heap.earliest());
	REQUIRE(heap.arm(1, 50) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(2, 10) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(3, 30) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(4, 30) == TimerHeap::ArmResult::Added);
	CHECK(heap.earliest() == 10u);
	CHECK(heap.size() == 4);

	std::vector<Fired> fired = pop_all(heap, 30);
	REQUIRE(fired.size() == 3);
	CHECK(fired[0].id == 2u);
	CHECK(fired[0].deadline == 10u);
	CHECK(fired[1].deadline == 30u);
	CHECK(fired[2].deadline == 30u);
	CHECK(heap.size() == 1);
	CHECK(heap.contains(1));
	CHECK_FALSE(heap.contains(2));
	CHECK(heap.earliest() == 50u);
	CHECK(pop_all(heap, 49).empty());
}

TEST_CASE("arming an armed id re-arms it, earlier or later", "[outsourcing][heap]")
{
	TimerHeap heap(100);
	for (uint32_t id = 0; id < 10; ++id)
		REQUIRE(heap.arm(id, 100 + id * 10) == TimerHeap::ArmResult::Added);
	CHECK(heap.arm(5, 1) == TimerHeap::ArmResult::Rearmed);
	CHECK(heap.earliest() == 1u);
	CHECK(heap.arm(5, 10000) == TimerHeap::ArmResult::Rearmed);
	CHECK(heap.deadline_of(5) == 10000u);
	CHECK(heap.size() == 10);
	std::vector<Fired> fired = pop_all(heap);
	REQUIRE(fired.size() == 10);
	CHECK(fired.back().id == 5u);
	CHECK(std::is_sorted(fired.begin(), fired.end(),
			     [](const Fired &a, const Fired &b) { return a.deadline < b.deadline; }));
}

TEST_CASE("cancel disarms exactly the id given", "[outsourcing][heap]")
{
	TimerHeap heap(100);
	REQUIRE(heap.arm(1, 10) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(2, 20) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(3, 30) == TimerHeap::ArmResult::Added);
	CHECK(heap.cancel(1));
	CHECK_FALSE(heap.cancel(1));
	CHECK_FALSE(heap.cancel(42));
	CHECK(heap.earliest() == 20u);
	CHECK(heap.cancel(3));
	std::vector<Fired> fired = pop_all(heap);
	REQUIRE(fired.size() == 1);
	CHECK(fired[0].id == 2u);
	CHECK(heap.empty());
}

TEST_CASE("the quota bounds new timers, not re-arms; freed room is reused", "[outsourcing][heap]")
{
	TimerHeap heap(3);
	CHECK(heap.quota() == 3);
	REQUIRE(heap.arm(1, 1) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(2, 2) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(3, 3) == TimerHeap::ArmResult::Added);
	CHECK(heap.arm(4, 4) == TimerHeap::ArmResult::OverQuota);
	CHECK_FALSE(heap.contains(4));
	CHECK(heap.arm(3, 0) == TimerHeap::ArmResult::Rearmed);
	CHECK(heap.cancel(2));
	CHECK(heap.arm(4, 4) == TimerHeap::ArmResult::Added);
	CHECK(heap.size() == 3);

	TimerHeap none(0);
	CHECK(none.arm(1, 1) == TimerHeap::ArmResult::OverQuota);
}

TEST_CASE("extreme deadlines and ids", "[outsourcing][heap]")
{
	TimerHeap heap(10);
	REQUIRE(heap.arm(0, UINT64_MAX) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(UINT32_MAX, 0) == TimerHeap::ArmResult::Added);
	CHECK(heap.earliest() == 0u);
	std::vector<Fired> at_zero = pop_all(heap, 0);
	REQUIRE(at_zero.size() == 1);
	CHECK(at_zero[0].id == UINT32_MAX);
	CHECK(pop_all(heap, UINT64_MAX - 1).empty());
	std::vector<Fired> at_end = pop_all(heap, UINT64_MAX);
	REQUIRE(at_end.size() == 1);
	CHECK(at_end[0].id == 0u);
}

TEST_CASE("clear forgets everything", "[outsourcing][heap]")
{
	TimerHeap heap(10);
	REQUIRE(heap.arm(1, 1) == TimerHeap::ArmResult::Added);
	heap.clear();
	CHECK(heap.empty());
	CHECK_FALSE(heap.contains(1));
	CHECK(heap.arm(1, 5) == TimerHeap::ArmResult::Added);
	CHECK(heap.earliest() == 5u);
}

// A million timers: add all, cancel a third, re-arm a third, then pop in
// steps. Pops come in deadline order, each live timer exactly once at its
// latest deadline, and no cancelled one ever.
TEST_CASE("a million timers", "[outsourcing][heap]")
{
	constexpr uint32_t kTimers = 1'000'000;
	TimerHeap heap(kTimers);
	std::mt19937_64 random(42);
	std::vector<uint32_t> ids(kTimers);
	std::iota(ids.begin(), ids.end(), 0u);
	std::shuffle(ids.begin(), ids.end(), random);  // arm in a random id order

	// Expected state per id: its deadline, or UINT64_MAX once cancelled
	// (the heap never holds UINT64_MAX here: deadlines < 2^40).
	constexpr uint64_t kCancelled = UINT64_MAX;
	std::vector<uint64_t> expected(kTimers);
	size_t added = 0;
	for (uint32_t id : ids) {
		expected[id] = random() % (uint64_t{1} << 40);
		added += heap.arm(id, expected[id]) == TimerHeap::ArmResult::Added;
	}
	REQUIRE(added == kTimers);
	CHECK(heap.size() == kTimers);
	CHECK(heap.arm(kTimers, 0) == TimerHeap::ArmResult::OverQuota);

	uint32_t cancelled = 0;
	uint32_t rearmed = 0;
	for (uint32_t i = 0; i < kTimers; ++i) {
		uint32_t id = ids[i];
		if (i % 3 == 0) {
			cancelled += heap.cancel(id);
			expected[id] = kCancelled;
		} else if (i % 3 == 1) {
			expected[id] = random() % (uint64_t{1} << 40);
			rearmed += heap.arm(id, expected[id]) == TimerHeap::ArmResult::Rearmed;
		}
	}
	REQUIRE(cancelled == (kTimers + 2) / 3);
	REQUIRE(rearmed == (kTimers + 1) / 3);
	CHECK(heap.size() == kTimers - cancelled);

	std::vector<uint8_t> popped(kTimers, 0);
	uint64_t last_deadline = 0;
	bool in_order = true;
	bool right_deadline = true;
	bool cancelled_popped = false;
	bool twice = false;
	size_t total = 0;
	// Pop in 64 steps of time, so pop_expired stops mid-heap many times.
	for (uint64_t step = 1; step <= 64; ++step) {
		uint64_t now = step == 64 ? UINT64_MAX - 1 : (step << 34) - 1;
		total += heap.pop_expired(now, [&](uint32_t id, uint64_t deadline) {
			in_order &= deadline >= last_deadline && deadline <= now;
			last_deadline = deadline;
			cancelled_popped |= expected[id] == kCancelled;
			right_deadline &= expected[id] == deadline;
			twice |= popped[id] != 0;
			popped[id] = 1;
		});
	}
	CHECK(in_order);
	CHECK(right_deadline);
	CHECK_FALSE(cancelled_popped);
	CHECK_FALSE(twice);
	CHECK(total == kTimers - cancelled);
	CHECK(heap.empty());
}
