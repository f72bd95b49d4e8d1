// Priority windows (DESIGN.md 1 and 5, kairos_abi.h "Priority windows"):
// the logic that decides when the vCPU threads that run an outsourced
// timer's work hold a real-time reservation, with no thread, clock or
// syscall of its own. TimerService feeds it each pass and applies what it
// returns through a VcpuScheduler (outsourcing/reservation.h).
//
// Why a window and not a boost at expiry: under host load the lateness is
// the vCPU thread waiting for a CPU (research/timer-punctuality.md, stage
// (d)). Priority given at expiry comes too late (the vCPU already queues
// behind the load) and priority taken back at the guest's ack comes too
// early (before the woken task ran). Kairos knows every deadline ahead of
// time, so it opens the window a lead time before the timer fires and closes
// it when the guest reports the consumer ran, or after a timeout.
//
// Bounds a guest cannot move: a per-vCPU token bucket of CPU time inside
// windows (refilled at 3/4 of runtime/period under SCHED_DEADLINE, at all
// of it for FIFO, at most one period's refill banked, charged at least as
// often as it could run dry), a timeout after the last covered deadline,
// and, for SCHED_DEADLINE, the kernel's own CBS budget of the reservation
// behind it (runtime per period).
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "abi/kairos_abi.h"
#include "base/result.h"

namespace kairos::outsourcing {

struct WindowConfig {
	enum class Policy { Off, Deadline, Fifo };
	Policy policy = Policy::Deadline;
	uint64_t runtime_ns = 1'000'000;  // reservation runtime per period, and the bucket's size
	uint64_t period_ns = 10'000'000;  // reservation period (its deadline too)
	std::optional<uint64_t> lead_ns;  // fixed lead; nullopt: learned (auto)
	uint64_t timeout_ns = 5'000'000;  // after the last covered deadline
	int fifo_priority = 40;           // policy Fifo only

	bool operator==(const WindowConfig &) const = default;
};

// "deadline", "fifo" or "off".
std::string to_string(WindowConfig::Policy policy);
Result<WindowConfig::Policy> parse_window_policy(const std::string &text);

using VcpuSet = std::bitset<KAIROS_MAX_VCPUS>;

struct WindowStats {
	uint64_t opened = 0;
	uint64_t closed_by_guest = 0;     // the guest reported the work done
	uint64_t closed_by_timeout = 0;   // it did not, in time
	uint64_t closed_by_detach = 0;    // the ring went away (module unload, stop)
	uint64_t closed_by_budget = 0;    // the bucket ran dry inside it
	uint64_t budget_exhausted = 0;    // episodes of windows refused or cut by the bucket
	uint64_t admission_refusals = 0;  // the kernel had no bandwidth for a vCPU (set by the service)
	uint64_t cpu_ns = 0;              // vCPU CPU time spent inside windows
	uint64_t open_ns = 0;             // wall time windows were open
	uint64_t lead_ns = 0;             // the lead in force now
};

// A decaying maximum of non-negative samples: follows a spike at once and
// forgets it by 1/16 per later sample, so a lead learned from it covers the
// recent worst case rather than the average.
class DecayingMax {
public:
	explicit DecayingMax(uint64_t initial = 0) : value_(initial) {}
	void record(uint64_t sample);
	uint64_t value() const { return value_; }

private:
	uint64_t value_;
};

// How early the host fires a timer so that, after the delivery path, the
// guest's handler starts at its deadline (as KVM's adaptive
// lapic_timer_advance_ns, arch/x86/kvm/lapic.c): each report of the
// guest's arrival relative to the deadline moves the advance by 1/8 of it.
// Reports beyond KAIROS_MAX_ADVANCE_NS either way (a vCPU that waited for
// a CPU, not the delivery path) are ignored.
class AdvanceEstimator {
public:
	// fixed: a fixed advance (0 = none); nullopt: learned.
	explicit AdvanceEstimator(std::optional<uint64_t> fixed);
	void record_arrival(int64_t arrival_ns);
	uint64_t advance_ns() const { return advance_ns_; }

	static constexpr uint64_t kMaxNs = KAIROS_MAX_ADVANCE_NS;

private:
	bool learned_;
	uint64_t advance_ns_;
};

// Per-vCPU budget of CPU time inside windows: refilled at runtime/period,
// at most `runtime` banked, charged with what the vCPU ran in a window.
class CpuBudget {
public:
	CpuBudget(uint64_t runtime_ns, uint64_t period_ns, uint64_t now_ns);
	void refill(uint64_t now_ns);
	void charge(uint64_t cpu_ns);
	bool available() const { return tokens_ns_ > 0; }
	// When available() becomes true again without further charges.
	uint64_t available_at(uint64_t now_ns) const;
	int64_t tokens_ns() const { return tokens_ns_; }

private:
	uint64_t runtime_ns_;
	uint64_t period_ns_;
	int64_t tokens_ns_;
	uint64_t refilled_at_ns_;
};

// What the timer service knows after a pass.
struct WindowInputs {
	uint64_t now_ns = 0;
	std::optional<uint64_t> next_fire_ns;       // when the earliest armed timer fires
	uint16_t next_vcpu = 0xffff;                // the vCPU it names (KAIROS_VCPU_ANY: none)
	uint32_t delivered = 0;                     // expiries delivered since the ring was attached
	uint32_t work_done = 0;                     // the guest's kairos_ring_header.work_done (untrusted)
	std::bitset<KAIROS_MAX_VCPUS> fired_vcpus;  // named by expiries delivered in this pass
};

struct WindowActions {
	VcpuSet open;   // put these vCPU threads into the reservation
	VcpuSet close;  // take these out of it
	bool any() const { return open.any() || close.any(); }
};

class WindowPlanner {
public:
	// cpu_time(vcpu): that vCPU thread's CPU time in ns (for the budget).
	using CpuTime = std::function<uint64_t(uint32_t vcpu)>;

	WindowPlanner(WindowConfig config, uint32_t vcpu_count, uint64_t now_ns);

	// The guest routed its upcall to this vCPU (validated by the caller).
	void set_upcall_vcpu(uint32_t vcpu) { upcall_vcpu_ = vcpu; }
	uint32_t upcall_vcpu() const { return upcall_vcpu_; }
	// The timer thread woke `lateness_ns` after it asked to (learned lead).
	void record_wake_lateness(uint64_t lateness_ns) { wake_lateness_.record(lateness_ns); }
	uint64_t lead_ns() const;

	// One pass: returns the vCPUs to move in and out of the reservation.
	WindowActions update(const WindowInputs &inputs, const CpuTime &cpu_time);
	// The ring is gone or the service stops: close what is open, forget
	// what the guest owed.
	WindowActions close_all(uint64_t now_ns, const CpuTime &cpu_time);

	// When update() must run again even if nothing else happens: the next
	// window's opening, or the open window's timeout, its charge or its
	// close one lead after the guest's report.
	std::optional<uint64_t> next_wakeup(const WindowInputs &inputs) const;

	bool is_open() const { return covered_.any(); }
	VcpuSet covered() const { return covered_; }
	WindowStats stats() const;

	static constexpr uint64_t kMinLeadNs = 50'000;
	// Kairos's own bucket under SCHED_DEADLINE, as a share of the
	// kernel's runtime per period (FIFO: the whole runtime).
	static constexpr uint64_t kBucketShareNumerator = 3;
	static constexpr uint64_t kBucketShareDenominator = 4;
	// An open window's budget is charged before the fastest vCPU could
	// have spent its tokens and half the bucket's margin to the kernel's
	// runtime, but not more often than this.
	static constexpr uint64_t kMinChargeIntervalNs = 50'000;
	static constexpr uint64_t kLeadMarginNs = 50'000;

private:
	enum class CloseReason { Guest, Timeout, Detach };
	// The bucket's size (and refill per period), ns.
	uint64_t bucket_ns() const;
	// How late after the bucket could run dry a charge may still come, ns.
	uint64_t charge_margin_ns() const;
	// When the open window ends whatever the guest reports: the timeout
	// after the last deadline it covers.
	uint64_t timeout_at_ns() const { return cover_until_ns_ + config_.timeout_ns; }
	// Expiries delivered whose work the guest has not reported done.
	uint32_t owed(const WindowInputs &inputs);
	VcpuSet wanted_vcpus(uint16_t named) const;
	VcpuSet valid_vcpus() const;
	void open_window(const WindowInputs &inputs, const CpuTime &cpu_time, WindowActions &actions);
	void add_vcpus(VcpuSet vcpus, const CpuTime &cpu_time, WindowActions &actions);
	// Charges every covered vCPU's CPU time since the last charge; cuts
	// those whose bucket ran dry.
	void charge(uint64_t now_ns, const CpuTime &cpu_time, WindowActions &actions);
	void close_window(uint64_t now_ns, CloseReason reason, const CpuTime &cpu_time, WindowActions &actions);

	WindowConfig config_;
	uint32_t vcpu_count_;
	uint32_t upcall_vcpu_ = 0;
	DecayingMax wake_lateness_;
	std::vector<CpuBudget> budgets_;
	std::vector<uint64_t> cpu_at_;  // per vCPU: CPU time at the last charge
	VcpuSet covered_;
	uint64_t opened_at_ns_ = 0;
	uint64_t cover_until_ns_ = 0;  // the latest fire time the window covers
	// Since when the open window's work is done with nothing due soon:
	// it closes one lead later unless the guest arms a deadline.
	std::optional<uint64_t> quiet_since_ns_;
	uint32_t done_offset_ = 0;  // added to work_done: what timeouts forgave
	bool exhausted_ = false;    // in a budget-exhausted episode
	uint64_t retry_at_ns_ = 0;  // no window before this (budget)
	WindowStats stats_;
};

}  // namespace kairos::outsourcing
