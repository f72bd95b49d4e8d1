#include "outsourcing/timer_engine.h"

#include <algorithm>

#include "base/error.h"

namespace kairos::outsourcing {

TimerEngine::TimerEngine(size_t max_timers, uint32_t vcpu_count)
	: heap_(max_timers), vcpu_count_(std::min<uint32_t>(vcpu_count, KAIROS_MAX_VCPUS))
{
}

Status TimerEngine::attach(std::span<uint8_t> area)
{
	if (!ring_area_usable(area))
		return make_error("outsourcing: ring area of {} bytes at {} is not usable "
				  "(need {} bytes, 4-byte aligned)",
				  area.size(), static_cast<const void *>(area.data()), kRingAreaSize);
	detach();
	delivered_since_attach_ = 0;
	requests_.emplace(area);
	completions_.emplace(area);
	requests_->set_host_polling(false);
	return {};
}

void TimerEngine::detach()
{
	if (requests_) {
		bad_request_indices_before_ += requests_->bad_indices();
		bad_completion_indices_before_ += completions_->bad_indices();
	}
	requests_.reset();
	completions_.reset();
	reset_timers();
}

void TimerEngine::reset_timers()
{
	counters_.discarded += held_expiries_.size();
	heap_.clear();
	held_.clear();
	held_expiries_.clear();
	awaiting_ack_.clear();
	held_errors_ = 0;
}

PassOutcome TimerEngine::process(uint64_t now_ns, Triggers triggers,
				 const std::function<void()> &before_expiries_visible, uint64_t advance_ns)
{
	PassOutcome outcome;
	outcome.acked = triggers.ack;
	counters_.doorbells += triggers.doorbell;
	counters_.acks += triggers.ack;
	counters_.timer_wakeups += triggers.timer;
	if (!attached())
		return outcome;

	// Held completions first: they are older than anything this pass makes.
	completions_->space();
	if (triggers.ack)
		record_acks(now_ns);
	flush_held(outcome);

	if (triggers.doorbell)
		drain_polling(now_ns, outcome);

	uint64_t fire_until = now_ns + std::min<uint64_t>(advance_ns, KAIROS_MAX_ADVANCE_NS);
	heap_.pop_expired(fire_until, [&](uint32_t id, uint64_t deadline_ns, uint16_t vcpu) {
		++counters_.expiries;
		// Fired early on purpose (advance): not late at all.
		lateness_.record(now_ns > deadline_ns ? now_ns - deadline_ns : 0);
		if (vcpu < vcpu_count_)
			outcome.fired_vcpus.set(vcpu);
		kairos_timer_completion completion{};
		completion.timer_id = id;
		completion.kind = KAIROS_COMPLETION_EXPIRED;
		completion.result = 0;
		completion.time_ns = now_ns;
		deliver(completion, outcome, deadline_ns);
	});

	if (outcome.expiries_delivered && before_expiries_visible)
		before_expiries_visible();
	completions_->publish();
	ask_for_ack(outcome);
	// With completions still held the event stays raised until they are in.
	outcome.raise_event = outcome.completions_written > 0 || !held_.empty();
	return outcome;
}

void TimerEngine::drain_polling(uint64_t now_ns, PassOutcome &outcome)
{
	// While the flag is set the guest publishes without a doorbell (one
	// VM exit saved per request during a burst). Bounded, so a guest that
	// never stops producing cannot keep the timer thread from its timers.
	requests_->set_host_polling(true);
	for (uint32_t round = 0; round < kMaxDrainRounds; ++round) {
		DrainResult drained = requests_->drain(batch_);
		outcome.bad_request_producer = outcome.bad_request_producer || drained.bad_producer;
		counters_.requests += drained.count;
		if (round > 0)
			counters_.polled_requests += drained.count;
		for (uint32_t i = 0; i < drained.count; ++i)
			apply(batch_[i], now_ns, outcome);
		if (drained.bad_producer) {
			// Answered, so the guest learns its index is broken; one
			// per doorbell, and errors beyond the backlog are dropped.
			kairos_timer_completion error{};
			error.timer_id = 0;
			error.kind = KAIROS_COMPLETION_ERROR;
			error.result = KAIROS_TIMER_EBADINDEX;
			deliver(error, outcome);
		}
		if (drained.count == 0 || drained.bad_producer) {
			// Clear, then look again: a request published before the
			// guest could see the flag clear came without a doorbell.
			requests_->set_host_polling(false);
			if (drained.bad_producer || !requests_->requests_waiting())
				return;
			requests_->set_host_polling(true);
		}
	}
	requests_->set_host_polling(false);
	outcome.requests_waiting = requests_->requests_waiting();
}

void TimerEngine::apply(const kairos_timer_request &request, uint64_t now_ns, PassOutcome &outcome)
{
	TimerCounts counts{heap_.contains(request.timer_id) || held_expiries_.contains(request.timer_id), outstanding(),
			   heap_.quota(), vcpu_count_};
	ParsedRequest parsed = parse_request(request, counts);
	if (auto *error = std::get_if<kairos_timer_completion>(&parsed)) {
		switch (error->result) {
		case KAIROS_TIMER_EBADOP:
			++counters_.errors_bad_op;
			break;
		case KAIROS_TIMER_ENOENT:
			++counters_.errors_no_entry;
			break;
		case KAIROS_TIMER_EQUOTA:
			++counters_.errors_quota;
			break;
		case KAIROS_TIMER_EBADVCPU:
			++counters_.errors_bad_vcpu;
			break;
		}
		deliver(*error, outcome);
		return;
	}

	const TimerAction &action = std::get<TimerAction>(parsed);
	if (action.kind == TimerAction::Kind::Cancel) {
		if (!heap_.cancel(action.timer_id))
			drop_held_expiry(action.timer_id);
		++counters_.dels;
		return;
	}

	// A held expiry of this id is stale now: the guest, which has not seen
	// it, re-armed what it believes is a pending timer.
	drop_held_expiry(action.timer_id);
	// A deadline already passed fires in this pass. Arming it at `now`
	// changes nothing the guest can see and keeps the guest's lateness out
	// of the host's.
	if (action.deadline_ns <= now_ns)
		++counters_.immediate;
	uint64_t deadline_ns = std::max(action.deadline_ns, now_ns);
	if (heap_.arm(action.timer_id, deadline_ns, action.vcpu) == TimerHeap::ArmResult::OverQuota) {
		// parse_request checked the quota; kept so the heap's own bound holds.
		++counters_.errors_quota;
		deliver(error_completion(request, KAIROS_TIMER_EQUOTA), outcome);
		return;
	}
	if (action.op == KAIROS_TIMER_MOD)
		++counters_.mods;
	else
		++counters_.adds;
}

void TimerEngine::ask_for_ack(PassOutcome &outcome)
{
	// The guest acks only when asked (kairos_abi.h): an ack wakes the
	// timer thread, which then preempts whatever runs on its CPU.
	completions_->set_wants_ack(!held_.empty());
	if (held_.empty())
		return;
	// Set, then look again: a guest that consumed before it could see
	// the flag did not ack, so its room is taken now.
	completions_->space();
	flush_held(outcome);
	completions_->publish();
	completions_->set_wants_ack(!held_.empty());
}

void TimerEngine::set_wants_done(bool wanted)
{
	if (completions_)
		completions_->set_wants_done(wanted);
}

bool TimerEngine::drop_held_expiry(uint32_t id)
{
	auto found = held_expiries_.find(id);
	if (found == held_expiries_.end())
		return false;
	held_.erase(found->second);
	held_expiries_.erase(found);
	++counters_.superseded;
	return true;
}

void TimerEngine::record_acks(uint64_t now_ns)
{
	uint32_t consumer = completions_->consumer();
	while (!awaiting_ack_.empty() && static_cast<int32_t>(consumer - awaiting_ack_.front().index) > 0) {
		uint64_t deadline_ns = awaiting_ack_.front().deadline_ns;
		ack_lateness_.record(now_ns > deadline_ns ? now_ns - deadline_ns : 0);
		awaiting_ack_.pop_front();
	}
}

void TimerEngine::await_ack(uint32_t index, uint64_t deadline_ns)
{
	awaiting_ack_.push_back({index, deadline_ns});
	if (awaiting_ack_.size() <= kMaxAwaitingAck)
		return;
	// The guest acks only while asked (or never, if it misbehaves): what
	// it consumed without an ack is forgotten here, so this record stays
	// within what the ring can hold unconsumed, whatever the guest does.
	uint32_t consumer = completions_->consumer();
	while (!awaiting_ack_.empty() && static_cast<int32_t>(consumer - awaiting_ack_.front().index) > 0) {
		awaiting_ack_.pop_front();
		++counters_.unacked;
	}
}

void TimerEngine::flush_held(PassOutcome &outcome)
{
	while (!held_.empty()) {
		uint32_t index = completions_->next_index();
		if (!completions_->stage(held_.front().completion))
			break;
		const kairos_timer_completion &completion = held_.front().completion;
		++outcome.completions_written;
		if (completion.kind == KAIROS_COMPLETION_EXPIRED) {
			++outcome.expiries_delivered;
			++counters_.delivered;
			++delivered_since_attach_;
			await_ack(index, held_.front().deadline_ns);
			held_expiries_.erase(completion.timer_id);
		} else {
			--held_errors_;
		}
		held_.pop_front();
	}
}

void TimerEngine::deliver(const kairos_timer_completion &completion, PassOutcome &outcome, uint64_t deadline_ns)
{
	bool expiry = completion.kind == KAIROS_COMPLETION_EXPIRED;
	uint32_t index = completions_->next_index();
	if (held_.empty() && completions_->stage(completion)) {
		++outcome.completions_written;
		if (expiry) {
			++outcome.expiries_delivered;
			++counters_.delivered;
			++delivered_since_attach_;
			await_ack(index, deadline_ns);
		}
		return;
	}
	if (expiry) {
		// At most one per id (a re-arm drops the old one), so the quota
		// bounds these.
		held_.push_back({completion, deadline_ns});
		held_expiries_[completion.timer_id] = std::prev(held_.end());
		++counters_.coalesced;
		return;
	}
	if (held_errors_ >= kMaxHeldErrors) {
		++counters_.errors_dropped;
		return;
	}
	held_.push_back({completion, 0});
	++held_errors_;
}

TimerStats TimerEngine::counters() const
{
	TimerStats stats = counters_;
	stats.bad_request_indices = bad_request_indices_before_ + (requests_ ? requests_->bad_indices() : 0);
	stats.bad_completion_indices =
		bad_completion_indices_before_ + (completions_ ? completions_->bad_indices() : 0);
	stats.armed = heap_.size();
	stats.held = held_.size();
	stats.held_expiries = held_expiries_.size();
	stats.lateness = lateness_.counts();
	stats.ack_lateness = ack_lateness_.counts();
	return stats;
}

TimerStats TimerEngine::stats() const
{
	TimerStats stats = counters();
	stats.lateness = lateness_.summary();
	stats.ack_lateness = ack_lateness_.summary();
	return stats;
}

}  // namespace kairos::outsourcing
