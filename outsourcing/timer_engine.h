// TimerEngine: the logic of the timer service, one pass at a time, with no
// thread, fd or clock of its own: the caller says what woke it and what time
// it is. TimerService runs it on the timer thread; tests and the fuzz target
// drive it directly.
//
// A pass: flush held completions into the completion ring, drain and apply
// every published request (doorbell), fire every timer that is due, publish.
//
// Completions that find the ring full are held by the host, in order, and
// delivered once the guest makes room (kairos_abi.h: nothing is lost). Held
// expiries stay outstanding timers (they count against the quota, which
// bounds the backlog), so a guest that re-arms or cancels such a timer
// before seeing its expiry gets timer_list semantics: the stale expiry is
// dropped ("superseded") and only the new arming, if any, fires.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>

#include "abi/kairos_abi.h"
#include "base/result.h"
#include "outsourcing/lateness_histogram.h"
#include "outsourcing/request_parser.h"
#include "outsourcing/ring.h"
#include "outsourcing/timer_heap.h"

namespace kairos::outsourcing {

struct TimerStats {
	// What woke the engine.
	uint64_t doorbells = 0;
	uint64_t acks = 0;
	uint64_t timer_wakeups = 0;
	uint64_t guest_wakeups_deferred = 0;  // port writes held back by the rate limit (TimerService)
	// Requests consumed from the ring, and the ones applied, by op.
	uint64_t requests = 0;
	uint64_t polled_requests = 0;  // ... found while host_polling was set (no doorbell needed)
	uint64_t adds = 0;
	uint64_t mods = 0;
	uint64_t dels = 0;
	uint64_t immediate = 0;  // armed with a deadline already passed
	// Expiries.
	uint64_t expiries = 0;    // timers that fired
	uint64_t delivered = 0;   // EXPIRED completions written to the ring
	uint64_t coalesced = 0;   // expiries held because the ring was full
	uint64_t superseded = 0;  // held expiries dropped: the guest re-armed or cancelled first
	uint64_t discarded = 0;   // held expiries dropped because the ring was detached
	uint64_t unacked = 0;     // expiries the guest consumed without an ack (none was asked for)
	// Guest errors.
	uint64_t errors_bad_op = 0;
	uint64_t errors_no_entry = 0;
	uint64_t errors_quota = 0;
	uint64_t errors_bad_vcpu = 0;
	uint64_t errors_dropped = 0;  // error completions lost: ring and error backlog full
	uint64_t bad_request_indices = 0;
	uint64_t bad_completion_indices = 0;
	// Now.
	uint64_t armed = 0;
	uint64_t held = 0;           // completions waiting for room in the ring ...
	uint64_t held_expiries = 0;  // ... of which expiries (the rest are errors)
	// Fire time minus the later of the deadline and the moment the host
	// learned of the timer (a guest arming in the past is not host lateness).
	LatenessSummary lateness;
	// The guest's ack of a completion ring holding the expiry (it had
	// consumed it) minus the timer's deadline: the whole path to the guest.
	LatenessSummary ack_lateness;
};

struct Triggers {
	bool doorbell = false;  // drain requests
	bool ack = false;       // the guest consumed completions
	bool timer = false;     // the timerfd fired
};

// What the caller must do after a pass (TimerService calls its hooks).
struct PassOutcome {
	uint32_t expiries_delivered = 0;   // EXPIRED completions written this pass
	uint32_t completions_written = 0;  // of any kind
	bool raise_event = false;          // the guest has completions to look at
	bool acked = false;
	bool bad_request_producer = false;
	// vCPUs named by the expiries written this pass (priority windows).
	std::bitset<KAIROS_MAX_VCPUS> fired_vcpus;
	// Requests arrived while the host polled and are still in the ring
	// (the pass stopped at its drain bound): the caller must come back
	// without waiting for a doorbell the guest may have skipped.
	bool requests_waiting = false;
};

class TimerEngine {
public:
	// vcpu_count: requests may name APIC ids 0..vcpu_count-1 (or ANY).
	explicit TimerEngine(size_t max_timers = kDefaultMaxTimers, uint32_t vcpu_count = KAIROS_MAX_VCPUS);

	// The guest registered its ring area. Timers and held completions of an
	// earlier registration are dropped: their ids meant nothing to the new one.
	Status attach(std::span<uint8_t> area);
	// The area is gone: forget it, every timer and every held completion.
	void detach();
	bool attached() const { return requests_.has_value(); }

	// before_expiries_visible, when set, runs after this pass staged at
	// least one expiry and before the guest can see it (the completion
	// producer index moves): TimerService refreshes the shared time there,
	// so a callback never reads a time older than its own expiry.
	// advance_ns: fire timers due up to that much after now_ns (the
	// guest waits for the deadline itself; kairos_abi.h "Advance").
	PassOutcome process(uint64_t now_ns, Triggers triggers,
			    const std::function<void()> &before_expiries_visible = {}, uint64_t advance_ns = 0);

	// The earliest armed deadline (fire it advance_ns before), and the
	// vCPU its timer names (kAnyVcpu: none).
	std::optional<uint64_t> next_deadline() const { return heap_.earliest(); }
	uint16_t next_vcpu() const { return heap_.earliest_vcpu(); }
	// Expiries written to the ring since the last attach (free-running,
	// as the guest's work_done), and what the guest reports, raw.
	uint32_t delivered_since_attach() const { return delivered_since_attach_; }
	uint32_t work_done() const { return completions_ ? completions_->work_done() : 0; }
	int32_t arrival_ns() const { return completions_ ? completions_->arrival_ns() : 0; }
	// Asks the guest for KAIROS_PORT_DONE reports (while a window is open).
	void set_wants_done(bool wanted);
	size_t outstanding() const { return heap_.size() + held_expiries_.size(); }
	size_t max_timers() const { return heap_.quota(); }
	// Every count of stats(); of the two lateness summaries only samples
	// and max: no histogram walk, for callers that ask in a loop.
	TimerStats counters() const;
	// counters() and the lateness percentiles.
	TimerStats stats() const;

	// Error completions held beyond the ring (expiries are bounded by the quota).
	static constexpr size_t kMaxHeldErrors = KAIROS_RING_COMPLETIONS;
	// Expiries written and not yet acked that are remembered for the ack
	// lateness: beyond this, the ones the guest consumed are forgotten.
	static constexpr size_t kMaxAwaitingAck = 2 * KAIROS_RING_COMPLETIONS;
	size_t awaiting_ack() const { return awaiting_ack_.size(); }
	// Ring-fulls one doorbell pass drains at most before it yields.
	static constexpr uint32_t kMaxDrainRounds = 16;

private:
	struct Held {
		kairos_timer_completion completion;
		uint64_t deadline_ns = 0;  // expiries only
	};
	using HeldList = std::list<Held>;
	// An expiry written to the ring, until the guest acks having taken it.
	struct AwaitingAck {
		uint32_t index;
		uint64_t deadline_ns;
	};

	void reset_timers();
	void apply(const kairos_timer_request &request, uint64_t now_ns, PassOutcome &outcome);
	// Drains with host_polling set until the ring stays empty, bounded.
	void drain_polling(uint64_t now_ns, PassOutcome &outcome);
	// Drops a held expiry of `id`; false if there is none.
	bool drop_held_expiry(uint32_t id);
	void flush_held(PassOutcome &outcome);
	// Sets host_wants_ack while completions are held, and flushes what
	// the guest made room for meanwhile.
	void ask_for_ack(PassOutcome &outcome);
	void deliver(const kairos_timer_completion &completion, PassOutcome &outcome, uint64_t deadline_ns = 0);
	// Remembers an expiry written at `index` until the guest acks it.
	void await_ack(uint32_t index, uint64_t deadline_ns);
	// Ack lateness of every expiry the guest had taken when it acked.
	void record_acks(uint64_t now_ns);

	TimerHeap heap_;
	uint32_t vcpu_count_;
	uint32_t delivered_since_attach_ = 0;
	std::optional<RequestConsumer> requests_;
	std::optional<CompletionProducer> completions_;
	HeldList held_;
	std::unordered_map<uint32_t, HeldList::iterator> held_expiries_;  // timer id -> its held expiry
	size_t held_errors_ = 0;
	std::array<kairos_timer_request, KAIROS_RING_REQUESTS> batch_{};
	LatenessHistogram lateness_;
	LatenessHistogram ack_lateness_;
	// At most kMaxAwaitingAck (await_ack); unconsumed ones are at most a
	// ring, since expiries beyond it are held, not written.
	std::deque<AwaitingAck> awaiting_ack_;
	TimerStats counters_;
	// Indices counted by ring views of earlier registrations.
	uint64_t bad_request_indices_before_ = 0;
	uint64_t bad_completion_indices_before_ = 0;
};

}  // namespace kairos::outsourcing
