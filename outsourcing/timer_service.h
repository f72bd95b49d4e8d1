// TimerService: the timer thread (DESIGN.md 1 and 5). It owns an io_uring,
// one timerfd (CLOCK_MONOTONIC, absolute) armed at the earliest deadline of
// the VM's timers, the doorbell eventfd the VMM registers as the KVM
// ioeventfd of KAIROS_PORT_DOORBELL, and eventfds for acks and stopping.
// Each wake-up runs one TimerEngine pass, then the hooks, then re-arms the
// timerfd.
//
// Threads: attach/detach/stats/ack/ring_doorbell may be called from any
// thread while the timer thread runs. The engine runs under a mutex that
// attach and detach take too, so once detach() returns the thread no longer
// touches the area. Hooks run on the timer thread without that mutex held.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "base/event_fd.h"
#include "base/io_uring.h"
#include "base/logger.h"
#include "base/pi_mutex.h"
#include "base/result.h"
#include "base/timer_fd.h"
#include "outsourcing/priority.h"
#include "outsourcing/reservation.h"
#include "outsourcing/timer_engine.h"
#include "outsourcing/wakeup_limiter.h"
#include "outsourcing/window.h"

namespace kairos::outsourcing {

// Called on the timer thread. A hook that throws stops the service (see
// TimerService::failure); none may call back into the TimerService.
struct TimerHooks {
	// Re-publish pvclock time: called once expiries are staged, before
	// the guest can see them, so no callback reads a time older than its
	// expiry (on the timer thread, with the engine's lock held).
	std::function<void()> refresh_time;
	// Raise KAIROS_EVENT_TIMER_EXPIRED.
	std::function<void()> raise_event;
	// The thread stopped on its own after start() returned (a hook threw,
	// a read failed): the guest's outsourced timers are dead from now on,
	// so the VMM must say so and stop (issue 12). Called once, last, with
	// the reason that failure() gives; it may not throw.
	std::function<void(const std::string &)> stopped_on_failure;
};

struct TimerServiceConfig {
	size_t max_timers = kDefaultMaxTimers;   // outsourcing.max_timers
	Priority priority;                       // outsourcing.priority
	uint32_t vcpu_count = KAIROS_MAX_VCPUS;  // valid request.vcpu values
	WindowConfig window;                     // outsourcing.window
	std::optional<uint64_t> advance_ns = 0;  // outsourcing.advance_us; nullopt: learned
	// outsourcing.guest_wakeups_hz: passes per second the guest's port
	// writes (doorbell, ack, done) may cause, on average (WakeupLimiter).
	uint64_t guest_wakeups_hz = kDefaultGuestWakeupsHz;
};

class TimerService {
public:
	// `log` gets what the thread finds out later (priority windows that
	// fall back or stop); it outlives the service.
	static Result<std::unique_ptr<TimerService>> create(TimerServiceConfig config, TimerHooks hooks,
							    const Logger &log);
	~TimerService();
	TimerService(const TimerService &) = delete;
	TimerService &operator=(const TimerService &) = delete;

	// Starts the timer thread (once) and applies the configured priority to it.
	// Returns a one-line warning when the priority was not permitted (the
	// thread then runs at normal priority), or "" when all went as
	// configured; an error only if the thread could not start.
	// confine_thread, if set, runs on the new thread once it has set itself
	// up and before it serves the guest (the VMM's seccomp filter); its
	// error is start()'s.
	Result<std::string> start(std::function<Status()> confine_thread = {});
	// Stops and joins the thread. Idempotent; the destructor calls it.
	void stop();

	// For KVM_IOEVENTFD on KAIROS_PORT_DOORBELL, _ACK and _DONE. Owned
	// by the service.
	int doorbell_fd() const { return wakeups_.doorbell.fd(); }
	int ack_fd() const { return wakeups_.ack.fd(); }
	int done_fd() const { return wakeups_.done.fd(); }
	// What the ioeventfd does, for callers without one (and for tests).
	void ring_doorbell();
	// The guest wrote KAIROS_PORT_ACK: it consumed completions, so held
	// ones can go in. Cheap: an eventfd write; the thread does the work.
	void ack();
	// The guest wrote KAIROS_PORT_DONE: a window may close.
	void report_done();
	// The VM is paused (kairos ctl pause): while held, the thread runs no
	// pass, so nothing is written to the ring and no event is raised;
	// timers that fall due wait in the heap. release() rings the doorbell:
	// one pass then takes what the guest posted before the pause and fires
	// every timer due, each once. From any thread.
	void hold();
	void release();

	// The guest registered its ring area (validated by the VMM, mapped
	// until detach() returns). Replaces an earlier one; see TimerEngine.
	// The first attach has the timer thread probe the priority windows,
	// detach has it close every open one: both at its next wake-up, which
	// a guest storming its ports defers by at most one rate-limit token
	// (1 / guest_wakeups_hz).
	Status attach(std::span<uint8_t> area);
	void detach();
	bool attached() const;

	// The vCPU threads windows act on (once they run). Until then, and
	// with outsourcing.window.policy "off", no window opens. Tries the
	// reservation once on vCPU 0, now if a ring is attached, else when the
	// first one is (printing the warning then): returns a one-line warning
	// when it is refused (windows are then off for this run), else "".
	std::string set_vcpu_scheduler(std::unique_ptr<VcpuScheduler> scheduler);
	// KAIROS_CMD_SET_UPCALL_VCPU; false if `vcpu` is not one of the VM's.
	bool set_upcall_vcpu(uint32_t vcpu);

	TimerStats stats() const;
	WindowStats window_stats() const;
	// How often each vCPU thread was put into the reservation.
	std::vector<uint64_t> window_raises() const;
	// How often each vCPU thread was wanted in a window and the kernel
	// refused it the reservation (SCHED_DEADLINE admission, EBUSY): the
	// window went without it. Raises plus refusals are the windows that
	// asked for the vCPU.
	std::vector<uint64_t> window_refusals() const;
	// The policy windows use now ("off" when refused or not configured).
	std::string window_policy() const;
	uint64_t advance_ns() const;
	// CPU time of the timer thread so far (ns).
	uint64_t timer_thread_cpu_ns() const;
	// Why the timer thread stopped on its own ("" if it did not).
	std::string failure() const;

private:
	enum Source : uint64_t { kDoorbell, kAck, kTimer, kStop, kDone, kSourceCount };

	// What the timer thread waits on: made before the service, so that a
	// service always has all of them.
	struct Wakeups {
		EventFd doorbell;
		EventFd ack;
		EventFd stop;
		EventFd done;
		TimerFd timer;
		IoUring ring;
		static Result<Wakeups> create();
	};
	TimerService(TimerServiceConfig config, TimerHooks hooks, const Logger &log, Wakeups wakeups);
	void run(std::promise<std::string> &started, const std::function<Status()> &confine_thread);
	Status loop();
	Status loop_until_stopped();
	// The read of an eventfd, or the poll of the timerfd (Wakeups::create
	// says why), whose completion wakes the thread.
	Status submit_wait(Source source);
	// After a pass: which of the guest-driven reads that completed may be
	// submitted again now (fired[] says), and which wait for a token;
	// returns when the timer thread must look again for them.
	std::optional<uint64_t> limit_guest_wakeups(uint64_t now_ns, std::array<bool, kSourceCount> &fired);
	Status arm_timer(std::optional<uint64_t> deadline_ns);
	// Records why the thread stops; after_start: tell the VMM too.
	void fail(std::string message, bool after_start);
	// With mutex_ held: one planner pass after an engine pass; returns
	// when the timer thread must look again for the windows' sake.
	std::optional<uint64_t> plan_windows(uint64_t now_ns, const PassOutcome &outcome);
	void apply_windows(const WindowActions &actions);
	// The first vcpu_count entries of a per-vCPU counter (mutex_ held).
	std::vector<uint64_t> per_vcpu(const std::array<uint64_t, KAIROS_MAX_VCPUS> &counts) const;
	void close_windows(uint64_t now_ns);
	void disable_windows(const std::string &why);
	// With mutex_ held: the start-up probe; a warning or "".
	std::string probe_windows();
	// Timer thread: the probe attach() asked for and the closing detach()
	// did, run here because only this thread changes a thread's
	// scheduling: attach and detach run on a vCPU thread (a Kairos-device
	// command), whose seccomp list has no sched_setattr (confinement.cpp).
	void run_scheduler_requests(uint64_t now_ns);

	TimerServiceConfig config_;
	TimerHooks hooks_;
	const Logger &log_;
	// Destroyed after read_buffers_'s last use: the ring's exit cancels
	// the reads still in flight into them.
	Wakeups wakeups_;
	std::array<uint64_t, kSourceCount> read_buffers_{};
	std::optional<uint64_t> timer_armed_at_;   // timer thread only
	WakeupLimiter guest_wakeups_;              // timer thread only
	std::array<bool, kSourceCount> paused_{};  // reads waiting for a token; timer thread only
	std::atomic<uint64_t> wakeups_deferred_{0};
	std::atomic<bool> held_{false};  // hold() .. release()

	// Guards engine_, failure_ and the window state. Priority inheritance:
	// the timer thread may be real-time (outsourcing.priority).
	mutable PiMutex mutex_;
	TimerEngine engine_;
	std::string failure_;
	std::unique_ptr<VcpuScheduler> scheduler_;
	std::optional<WindowPlanner> planner_;  // set by the probe, unless windows are off
	bool probed_ = false;
	bool probe_due_ = false;  // attach() asked the timer thread to probe
	bool close_due_ = false;  // detach() asked it to close every window
	VcpuSet raised_;          // vCPU threads in the reservation now
	std::array<uint64_t, KAIROS_MAX_VCPUS> raises_{};
	std::array<uint64_t, KAIROS_MAX_VCPUS> refusals_{};
	uint64_t raise_failures_ = 0;
	uint64_t admission_refusals_ = 0;
	AdvanceEstimator advance_;
	uint32_t last_work_done_ = 0;
	std::atomic<uint32_t> upcall_vcpu_{0};
	std::atomic<uint64_t> timer_thread_cpu_ns_{0};
	clockid_t timer_thread_clock_{};
	std::atomic<bool> timer_thread_running_{false};
	bool started_ = false;
	std::thread thread_;
};

}  // namespace kairos::outsourcing
