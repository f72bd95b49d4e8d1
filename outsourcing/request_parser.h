// The meaning of one VMRPC request: an action on the VM's timers, or the
// error completion the guest gets instead. Pure functions of a request the
// host has already copied out of guest memory and of what the host knows
// about its timers; the fuzz target enters here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <variant>

#include "abi/kairos_abi.h"
#include "outsourcing/timer_heap.h"

namespace kairos::outsourcing {

struct TimerAction {
	enum class Kind : uint8_t { Arm, Cancel };
	Kind kind;
	uint32_t op;  // the request's KAIROS_TIMER_*, kept for statistics
	uint32_t timer_id;
	uint64_t deadline_ns;      // any value: 0 or past fires at once, huge never
	uint16_t vcpu = kAnyVcpu;  // a valid APIC id, or kAnyVcpu
};

using ParsedRequest = std::variant<TimerAction, kairos_timer_completion>;

// What the parser must know about the VM's timers. A timer is outstanding
// while it is armed, and after it expired until its expiry reaches the
// completion ring: the quota counts both, so the host's backlog of
// undelivered expiries is bounded too.
struct TimerCounts {
	bool id_outstanding;  // the request's timer_id is outstanding
	size_t outstanding;
	size_t quota;
	uint32_t vcpu_count = KAIROS_MAX_VCPUS;  // valid request.vcpu values: 0..vcpu_count-1, ANY
};

// ADD and MOD arm (re-arm an outstanding id), DEL cancels. Errors:
// unknown op -> KAIROS_TIMER_EBADOP; DEL of an id that is not outstanding
// -> KAIROS_TIMER_ENOENT; arming a new id with the quota used up ->
// KAIROS_TIMER_EQUOTA; ADD or MOD naming a vCPU that is neither one of the
// VM's (APIC ids 0..vcpu_count-1) nor KAIROS_VCPU_ANY -> KAIROS_TIMER_EBADVCPU.
ParsedRequest parse_request(const kairos_timer_request &request, const TimerCounts &counts);

// The same against a heap alone (every outstanding timer is armed).
ParsedRequest parse_request(const kairos_timer_request &request, const TimerHeap &timers);

// The completion that reports `result` (a KAIROS_TIMER_E*) for `request`.
kairos_timer_completion error_completion(const kairos_timer_request &request, int16_t result);

}  // namespace kairos::outsourcing
