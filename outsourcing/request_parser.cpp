#include "outsourcing/request_parser.h"

namespace kairos::outsourcing {

kairos_timer_completion error_completion(const kairos_timer_request &request, int16_t result)
{
	kairos_timer_completion completion{};
	completion.timer_id = request.timer_id;
	completion.kind = KAIROS_COMPLETION_ERROR;
	completion.result = result;
	// kairos_abi.h: an error completion carries the request's deadline.
	completion.time_ns = request.deadline_ns;
	return completion;
}

ParsedRequest parse_request(const kairos_timer_request &request, const TimerCounts &counts)
{
	switch (request.op) {
	case KAIROS_TIMER_ADD:
	case KAIROS_TIMER_MOD:
		if (request.vcpu != KAIROS_VCPU_ANY && request.vcpu >= counts.vcpu_count)
			return error_completion(request, KAIROS_TIMER_EBADVCPU);
		if (!counts.id_outstanding && counts.outstanding >= counts.quota)
			return error_completion(request, KAIROS_TIMER_EQUOTA);
		return TimerAction{TimerAction::Kind::Arm, request.op, request.timer_id, request.deadline_ns,
				   request.vcpu};
	case KAIROS_TIMER_DEL:
		if (!counts.id_outstanding)
			return error_completion(request, KAIROS_TIMER_ENOENT);
		return TimerAction{TimerAction::Kind::Cancel, request.op, request.timer_id, request.deadline_ns};
	default:
		return error_completion(request, KAIROS_TIMER_EBADOP);
	}
}

ParsedRequest parse_request(const kairos_timer_request &request, const TimerHeap &timers)
{
	return parse_request(request, TimerCounts{timers.contains(request.timer_id), timers.size(), timers.quota()});
}

}  // namespace kairos::outsourcing
