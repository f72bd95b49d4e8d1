// Moving vCPU threads in and out of a real-time reservation, for priority
// windows (outsourcing/window.h). Linux only: sched_setattr(2) on a thread
// id (sched(7): a TID names one thread), SCHED_DEADLINE as described in
// Documentation/scheduler/sched-deadline.rst, SCHED_FIFO as the fallback.
#pragma once

#include <time.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "outsourcing/window.h"

namespace kairos::outsourcing {

// What the timer service needs of the vCPU threads. An interface, so the
// window logic can be driven in tests without real-time rights.
class VcpuScheduler {
public:
	virtual ~VcpuScheduler() = default;
	virtual uint32_t vcpu_count() const = 0;
	// Into the reservation: true, or false when the kernel has no room
	// for it now (admission control, EBUSY; try again at the next
	// window); an error when it will not do it at all.
	virtual Result<bool> raise(uint32_t vcpu) = 0;
	// Back to the thread's own policy.
	virtual Status lower(uint32_t vcpu) = 0;
	// The thread's CPU time so far, in ns.
	virtual uint64_t cpu_time_ns(uint32_t vcpu) const = 0;
	// The policy in force ("deadline", "fifo"): it may fall back.
	virtual WindowConfig::Policy policy() const = 0;
	// A one-time note for the user (a fallback), or "".
	virtual std::string take_note() { return {}; }
};

struct VcpuThread {
	uint64_t tid = 0;         // Linux thread id
	clockid_t cpu_clock = 0;  // pthread_getcpuclockid of the thread
};

// The real one. raise() puts the thread into SCHED_DEADLINE (runtime
// runtime_ns, deadline = period = period_ns) or SCHED_FIFO at
// fifo_priority; lower() restores the policy and nice value the thread
// had when this object was made. When the kernel refuses SCHED_DEADLINE
// (a CPU affinity narrower than the root domain, a kernel without it)
// but takes SCHED_FIFO, the policy falls back to FIFO for good and
// take_note() says why, once. Admission control's EBUSY (no bandwidth left
// now: other reservations, or this thread's own bandwidth not yet returned
// after its last window, sched-deadline.rst 3.3) refuses one window only,
// unless it comes 16 times in a row or at the very first raise (the
// start-up probe): then the policy falls back too.
class ThreadReservations : public VcpuScheduler {
public:
	ThreadReservations(std::vector<VcpuThread> threads, const WindowConfig &config);

	uint32_t vcpu_count() const override { return static_cast<uint32_t>(threads_.size()); }
	Result<bool> raise(uint32_t vcpu) override;
	Status lower(uint32_t vcpu) override;
	uint64_t cpu_time_ns(uint32_t vcpu) const override;
	WindowConfig::Policy policy() const override { return policy_; }

	// Non-empty once, after a fallback from deadline to fifo.
	std::string take_note() override;

private:
	Status apply(uint32_t vcpu, WindowConfig::Policy policy);

	struct Original {
		int policy = 0;
		int nice = 0;
		int priority = 0;
	};
	std::vector<VcpuThread> threads_;
	std::vector<Original> original_;
	WindowConfig config_;
	WindowConfig::Policy policy_;
	std::string note_;
	uint32_t busy_in_a_row_ = 0;
	bool raised_once_ = false;
	static constexpr uint32_t kMaxBusyInARow = 16;
};

}  // namespace kairos::outsourcing
