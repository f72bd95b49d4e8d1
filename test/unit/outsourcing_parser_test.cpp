#include <catch2/catch.hpp>

#include <variant>

#include "outsourcing/request_parser.h"

using namespace kairos::outsourcing;

namespace {

const kairos_timer_completion *error_of(const ParsedRequest &parsed)
{
	return std::get_if<kairos_timer_completion>(&parsed);
}

const TimerAction *action_of(const ParsedRequest &parsed)
{
	return std::get_if<TimerAction>(&parsed);
}

kairos_timer_request request(uint32_t op, uint32_t id, uint64_t deadline_ns, uint16_t vcpu = KAIROS_VCPU_ANY)
{
	return {static_cast<__u16>(op), vcpu, id, deadline_ns};
}

}  // namespace

TEST_CASE("ADD and MOD arm, DEL of an armed timer cancels", "[outsourcing][parser]")
{
	TimerHeap heap(10);
	const TimerAction *add = nullptr;
	ParsedRequest parsed = parse_request(request(KAIROS_TIMER_ADD, 5, 1234), heap);
	REQUIRE((add = action_of(parsed)));
	CHECK(add->kind == TimerAction::Kind::Arm);
	CHECK(add->op == KAIROS_TIMER_ADD);
	CHECK(add->timer_id == 5u);
	CHECK(add->deadline_ns == 1234u);

	ParsedRequest mod = parse_request(request(KAIROS_TIMER_MOD, 6, 99), heap);
	REQUIRE(action_of(mod));
	CHECK(action_of(mod)->kind == TimerAction::Kind::Arm);
	CHECK(action_of(mod)->op == KAIROS_TIMER_MOD);

	REQUIRE(heap.arm(5, 1234) == TimerHeap::ArmResult::Added);
	ParsedRequest del = parse_request(request(KAIROS_TIMER_DEL, 5, 0), heap);
	REQUIRE(action_of(del));
	CHECK(action_of(del)->kind == TimerAction::Kind::Cancel);
	CHECK(action_of(del)->timer_id == 5u);
}

TEST_CASE("an unknown op is KAIROS_TIMER_EBADOP, whatever else the request says", "[outsourcing][parser]")
{
	TimerHeap heap(10);
	REQUIRE(heap.arm(1, 10) == TimerHeap::ArmResult::Added);
	for (uint32_t op : {0u, 4u, 0x8001u, 0xffffu}) {
		ParsedRequest parsed = parse_request(request(op, 1, 77), heap);
		REQUIRE(error_of(parsed));
		CHECK(error_of(parsed)->kind == KAIROS_COMPLETION_ERROR);
		CHECK(error_of(parsed)->result == KAIROS_TIMER_EBADOP);
		CHECK(error_of(parsed)->timer_id == 1u);
		CHECK(error_of(parsed)->time_ns == 77u);  // the request's deadline
	}
}

TEST_CASE("DEL of a timer that is not outstanding is KAIROS_TIMER_ENOENT", "[outsourcing][parser]")
{
	TimerHeap heap(10);
	REQUIRE(heap.arm(1, 10) == TimerHeap::ArmResult::Added);
	ParsedRequest parsed = parse_request(request(KAIROS_TIMER_DEL, 2, 55), heap);
	REQUIRE(error_of(parsed));
	CHECK(error_of(parsed)->result == KAIROS_TIMER_ENOENT);
	CHECK(error_of(parsed)->timer_id == 2u);
	CHECK(error_of(parsed)->time_ns == 55u);

	// Outstanding but not armed (its expiry is held by the host): a DEL is fine.
	CHECK(action_of(parse_request(request(KAIROS_TIMER_DEL, 2, 0), TimerCounts{true, 1, 10})));
}

TEST_CASE("arming a new timer beyond the quota is KAIROS_TIMER_EQUOTA; re-arming is not", "[outsourcing][parser]")
{
	TimerHeap heap(2);
	REQUIRE(heap.arm(1, 10) == TimerHeap::ArmResult::Added);
	REQUIRE(heap.arm(2, 10) == TimerHeap::ArmResult::Added);
	for (uint32_t op : {KAIROS_TIMER_ADD, KAIROS_TIMER_MOD}) {
		ParsedRequest parsed = parse_request(request(op, 3, 10), heap);
		REQUIRE(error_of(parsed));
		CHECK(error_of(parsed)->result == KAIROS_TIMER_EQUOTA);
		CHECK(action_of(parse_request(request(op, 2, 20), heap)));
	}
	// Held expiries count against the quota too.
	CHECK(error_of(parse_request(request(KAIROS_TIMER_ADD, 9, 1), TimerCounts{false, 5, 5})));
	CHECK(action_of(parse_request(request(KAIROS_TIMER_ADD, 9, 1), TimerCounts{false, 4, 5})));
	// A zero quota refuses every new timer.
	CHECK(error_of(parse_request(request(KAIROS_TIMER_ADD, 9, 1), TimerCounts{false, 0, 0})));
}

TEST_CASE("deadlines 0 and UINT64_MAX pass through untouched", "[outsourcing][parser]")
{
	TimerHeap heap(10);
	for (uint64_t deadline : {uint64_t{0}, uint64_t{1}, UINT64_MAX - 1, UINT64_MAX}) {
		ParsedRequest parsed = parse_request(request(KAIROS_TIMER_ADD, 0, deadline), heap);
		REQUIRE(action_of(parsed));
		CHECK(action_of(parsed)->deadline_ns == deadline);
	}
	// Ids are any uint32, 0 and UINT32_MAX included.
	CHECK(action_of(parse_request(request(KAIROS_TIMER_ADD, UINT32_MAX, 1), heap))->timer_id == UINT32_MAX);
}

TEST_CASE("a request names a vCPU of the VM, or none", "[outsourcing][parser]")
{
	TimerCounts counts{false, 0, 10, 2};
	ParsedRequest named = parse_request(request(KAIROS_TIMER_ADD, 1, 5, 1), counts);
	const TimerAction *action = action_of(named);
	REQUIRE(action);
	CHECK(action->vcpu == 1);
	ParsedRequest any = parse_request(request(KAIROS_TIMER_ADD, 1, 5, KAIROS_VCPU_ANY), counts);
	REQUIRE(action_of(any));
	CHECK(action_of(any)->vcpu == KAIROS_VCPU_ANY);
	for (uint16_t bad : {uint16_t{2}, uint16_t{64}, uint16_t{0xfffe}}) {
		ParsedRequest parsed = parse_request(request(KAIROS_TIMER_MOD, 1, 5, bad), counts);
		const kairos_timer_completion *error = error_of(parsed);
		REQUIRE(error);
		CHECK(error->result == KAIROS_TIMER_EBADVCPU);
		CHECK(error->timer_id == 1);
	}
	// DEL carries no vCPU worth checking.
	CHECK(action_of(parse_request(request(KAIROS_TIMER_DEL, 1, 0, 0x1234), TimerCounts{true, 1, 10, 2})));
}
