#include "outsourcing/timer_service.h"

#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "base/clock.h"
#include "base/error.h"

namespace kairos::outsourcing {
namespace {

// Enough for the four reads in flight, with room.
constexpr unsigned kRingEntries = 8;

const char *source_name(uint64_t source)
{
	static constexpr const char *kNames[] = {"doorbell eventfd", "ack eventfd", "timerfd", "stop eventfd",
						 "done eventfd"};
	return source < std::size(kNames) ? kNames[source] : "unknown source";
}

}  // namespace

// The eventfds are blocking, and io_uring reads them with a poll-driven
// retry: an eventfd can be read without blocking (FMODE_NOWAIT), so the
// wake-up comes to this thread's own task work. The timerfd is polled and
// read here instead: a timerfd (Linux 6.1 still has no read_iter for it) is
// not such a file, and io_uring hands a read of it to an io-wq worker that
// blocks in it. That worker runs at normal priority (the thread's real-time
// policy is reset on fork), so every expiry waited for it, behind the
// host's load, before this thread woke: a sched_switch trace in the
// emulated machine showed iou-wrk-<timer tid> waking kairos-timer.
Result<TimerService::Wakeups> TimerService::Wakeups::create()
{
	constexpr auto kBlocking = EventFd::Mode::Blocking;
	KAIROS_TRY_ASSIGN(doorbell, EventFd::create(kBlocking, "the timer service's doorbell"));
	KAIROS_TRY_ASSIGN(ack, EventFd::create(kBlocking, "the timer service's acks"));
	KAIROS_TRY_ASSIGN(stop, EventFd::create(kBlocking, "stopping the timer service"));
	KAIROS_TRY_ASSIGN(done, EventFd::create(kBlocking, "the timer service's work-done reports"));
	KAIROS_TRY_ASSIGN(timer, TimerFd::create(TimerFd::Mode::NonBlocking, "the timer service"));
	KAIROS_TRY_ASSIGN(ring,
			  IoUring::create(kRingEntries, "the timer service", {IORING_OP_READ, IORING_OP_POLL_ADD}));
	return Wakeups{std::move(doorbell), std::move(ack),   std::move(stop),
		       std::move(done),     std::move(timer), std::move(ring)};
}

TimerService::TimerService(TimerServiceConfig config, TimerHooks hooks, const Logger &log, Wakeups wakeups)
	: config_(config), hooks_(std::move(hooks)), log_(log), wakeups_(std::move(wakeups)),
	  guest_wakeups_(config.guest_wakeups_hz, kGuestWakeupBurst), engine_(config.max_timers, config.vcpu_count),
	  advance_(config.advance_ns)
{
}

Result<std::unique_ptr<TimerService>> TimerService::create(TimerServiceConfig config, TimerHooks hooks,
							   const Logger &log)
{
	KAIROS_TRY_ASSIGN(wakeups, Wakeups::create());
	return std::unique_ptr<TimerService>(new TimerService(config, std::move(hooks), log, std::move(wakeups)));
}

TimerService::~TimerService()
{
	stop();
}

Result<std::string> TimerService::start(std::function<Status()> confine_thread)
{
	if (started_)
		return make_error("outsourcing: the timer service was already started");
	// The thread owns the promise: start() may return the moment it is set.
	std::promise<std::string> started;
	std::future<std::string> warning = started.get_future();
	try {
		thread_ = std::thread([this, started = std::move(started),
				       confine = std::move(confine_thread)]() mutable { run(started, confine); });
	} catch (const std::system_error &error) {
		return make_error("outsourcing: starting the timer thread: {}", error.what());
	}
	started_ = true;
	try {
		return warning.get();
	} catch (const std::future_error &) {
		// The thread died before it could report: run() recorded why.
		return make_error("outsourcing: the timer thread failed to start: {}", failure());
	}
}

void TimerService::stop()
{
	if (!thread_.joinable())
		return;
	wakeups_.stop.signal();
	thread_.join();
}

void TimerService::ring_doorbell()
{
	wakeups_.doorbell.signal();
}

void TimerService::ack()
{
	wakeups_.ack.signal();
}

void TimerService::hold()
{
	// Under the engine's lock: a pass already begun ends before this returns.
	std::lock_guard lock(mutex_);
	held_.store(true);
}

void TimerService::release()
{
	if (held_.exchange(false))
		ring_doorbell();  // the pass that the held wake-ups did not run
}

void TimerService::report_done()
{
	wakeups_.done.signal();
}

Status TimerService::attach(std::span<uint8_t> area)
{
	{
		std::lock_guard lock(mutex_);
		KAIROS_TRY(engine_.attach(area));
		// The first ring is when windows start to matter: the timer
		// thread probes then (run_scheduler_requests).
		probe_due_ = scheduler_ && !probed_;
	}
	// Requests published before the registration get served now, and
	// the probe runs.
	ring_doorbell();
	return {};
}

void TimerService::detach()
{
	{
		std::lock_guard lock(mutex_);
		engine_.detach();
		close_due_ = true;
	}
	ring_doorbell();  // the timer thread closes the windows
}

void TimerService::run_scheduler_requests(uint64_t now_ns)
{
	std::lock_guard lock(mutex_);
	if (std::exchange(close_due_, false))
		close_windows(now_ns);
	if (std::exchange(probe_due_, false) && engine_.attached() && !probed_) {
		std::string warning = probe_windows();
		if (!warning.empty())
			log_.warn("{}", warning);
	}
}

std::string TimerService::set_vcpu_scheduler(std::unique_ptr<VcpuScheduler> scheduler)
{
	std::lock_guard lock(mutex_);
	scheduler_ = std::move(scheduler);
	planner_.reset();
	probed_ = false;
	// A guest that never registers a ring never gets a window: its vCPUs
	// are not touched at all, not even by the probe.
	return engine_.attached() ? probe_windows() : std::string{};
}

std::string TimerService::probe_windows()
{
	probed_ = true;
	if (!scheduler_ || config_.window.policy == WindowConfig::Policy::Off || scheduler_->vcpu_count() == 0)
		return {};
	// Try it once, before the guest relies on anything, so a missing
	// right is said once and up front rather than at the first timer.
	Result<bool> raised = scheduler_->raise(0);
	if (!raised)
		return fmt::format("outsourcing.window {} not applied ({}); running without priority windows "
				   "(needs CAP_SYS_NICE, e.g. root)",
				   to_string(config_.window.policy), raised.error().message);
	if (!*raised)
		return fmt::format("outsourcing.window {} not applied (no bandwidth left: Device or resource "
				   "busy); running without priority windows",
				   to_string(config_.window.policy));
	Status lowered = scheduler_->lower(0);
	if (!lowered)
		return fmt::format("outsourcing.window: could not restore vCPU 0's policy ({}); "
				   "running without priority windows",
				   lowered.error().message);
	// The bucket's share follows the policy the probe left in force (a
	// DEADLINE refused and FIFO taken gets FIFO's bucket).
	WindowConfig planned = config_.window;
	planned.policy = scheduler_->policy();
	planner_.emplace(planned, scheduler_->vcpu_count(), monotonic_now_ns());
	planner_->set_upcall_vcpu(upcall_vcpu_.load());
	// A fallback the probe caused (deadline refused, fifo taken) is said now.
	return scheduler_->take_note();
}

bool TimerService::set_upcall_vcpu(uint32_t vcpu)
{
	if (vcpu >= config_.vcpu_count)
		return false;
	upcall_vcpu_.store(vcpu);
	return true;
}

void TimerService::apply_windows(const WindowActions &actions)
{
	if (!scheduler_)
		return;
	for (uint32_t vcpu = 0; vcpu < scheduler_->vcpu_count() && vcpu < raised_.size(); ++vcpu) {
		if (actions.close.test(vcpu) && raised_.test(vcpu)) {
			if (scheduler_->lower(vcpu))
				raised_.reset(vcpu);
			else
				++raise_failures_;
		}
		if (actions.open.test(vcpu) && !raised_.test(vcpu)) {
			Result<bool> raised = scheduler_->raise(vcpu);
			if (!raised) {
				++raise_failures_;
				disable_windows(raised.error().message);
				return;
			}
			if (!*raised) {
				++admission_refusals_;  // this window goes without
				++refusals_[vcpu];
				continue;
			}
			raised_.set(vcpu);
			++raises_[vcpu];
		}
	}
	std::string note = scheduler_->take_note();
	if (!note.empty())
		log_.warn("{}", note);
}

void TimerService::close_windows(uint64_t now_ns)
{
	if (!planner_ || !scheduler_)
		return;
	auto cpu_time = [this](uint32_t vcpu) { return scheduler_->cpu_time_ns(vcpu); };
	apply_windows(planner_->close_all(now_ns, cpu_time));
}

void TimerService::disable_windows(const std::string &why)
{
	// Said once: the planner is gone for the rest of the run.
	log_.warn("outsourcing.window: {}; running without priority windows", why);
	for (uint32_t vcpu = 0; vcpu < raised_.size(); ++vcpu)
		if (raised_.test(vcpu) && scheduler_->lower(vcpu))
			raised_.reset(vcpu);
	planner_.reset();
}

std::optional<uint64_t> TimerService::plan_windows(uint64_t now_ns, const PassOutcome &outcome)
{
	if (!engine_.attached())
		return std::nullopt;
	uint32_t work_done = engine_.work_done();
	if (work_done != last_work_done_) {
		// A report came in: the guest's arrival time of its last expiry.
		advance_.record_arrival(engine_.arrival_ns());
		last_work_done_ = work_done;
	}
	if (!planner_)
		return std::nullopt;
	WindowInputs inputs;
	inputs.now_ns = now_ns;
	if (auto deadline = engine_.next_deadline()) {
		uint64_t advance = advance_.advance_ns();
		inputs.next_fire_ns = *deadline > advance ? *deadline - advance : 0;
	}
	inputs.next_vcpu = engine_.next_vcpu();
	inputs.delivered = engine_.delivered_since_attach();
	inputs.work_done = work_done;
	inputs.fired_vcpus = outcome.fired_vcpus;
	planner_->set_upcall_vcpu(upcall_vcpu_.load());
	auto cpu_time = [this](uint32_t vcpu) { return scheduler_->cpu_time_ns(vcpu); };
	apply_windows(planner_->update(inputs, cpu_time));
	if (!planner_) {
		engine_.set_wants_done(false);
		return std::nullopt;
	}
	// Reports only while a window is open (kairos_abi.h); after asking,
	// look once more at what the guest may have reported unasked.
	engine_.set_wants_done(planner_->is_open());
	if (planner_->is_open() && engine_.work_done() != work_done) {
		inputs.work_done = last_work_done_ = engine_.work_done();
		apply_windows(planner_->update(inputs, cpu_time));
		if (!planner_)
			return std::nullopt;
		engine_.set_wants_done(planner_->is_open());
	}
	return planner_->next_wakeup(inputs);
}

WindowStats TimerService::window_stats() const
{
	std::lock_guard lock(mutex_);
	WindowStats stats = planner_ ? planner_->stats() : WindowStats{};
	stats.admission_refusals = admission_refusals_;
	return stats;
}

std::vector<uint64_t> TimerService::window_raises() const
{
	std::lock_guard lock(mutex_);
	return per_vcpu(raises_);
}

std::vector<uint64_t> TimerService::window_refusals() const
{
	std::lock_guard lock(mutex_);
	return per_vcpu(refusals_);
}

std::vector<uint64_t> TimerService::per_vcpu(const std::array<uint64_t, KAIROS_MAX_VCPUS> &counts) const
{
	uint32_t count = std::min<uint32_t>(config_.vcpu_count, KAIROS_MAX_VCPUS);
	return {counts.begin(), counts.begin() + count};
}

std::string TimerService::window_policy() const
{
	std::lock_guard lock(mutex_);
	return planner_ ? to_string(scheduler_->policy()) : "off";
}

uint64_t TimerService::advance_ns() const
{
	std::lock_guard lock(mutex_);
	return advance_.advance_ns();
}

uint64_t TimerService::timer_thread_cpu_ns() const
{
	if (timer_thread_running_.load())
		return clock_now_ns(timer_thread_clock_);
	return timer_thread_cpu_ns_.load();
}

bool TimerService::attached() const
{
	std::lock_guard lock(mutex_);
	return engine_.attached();
}

TimerStats TimerService::stats() const
{
	std::lock_guard lock(mutex_);
	TimerStats stats = engine_.stats();
	stats.guest_wakeups_deferred = wakeups_deferred_.load(std::memory_order_relaxed);
	return stats;
}

std::string TimerService::failure() const
{
	std::lock_guard lock(mutex_);
	return failure_;
}

void TimerService::fail(std::string message, bool after_start)
{
	{
		std::lock_guard lock(mutex_);
		failure_ = message;
	}
	// Before that, start() reports it; after, only the hook can.
	if (!after_start || !hooks_.stopped_on_failure)
		return;
	try {
		hooks_.stopped_on_failure(message);
	} catch (...) {
		// Nothing may escape the thread; failure() still says why.
	}
}

void TimerService::run(std::promise<std::string> &started, const std::function<Status()> &confine_thread)
{
	// Nothing may escape the thread: a throwing hook or a failed
	// allocation ends the service with a reason the VMM can report.
	bool after_start = false;
	try {
		// A normal thread's timerfd expiries may be deferred by its timer
		// slack (50 us by default) so the kernel can batch wake-ups; that
		// is pure lateness for this thread, whose whole job is timers.
		prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
		pthread_setname_np(pthread_self(), "kairos-timer");
		pthread_getcpuclockid(pthread_self(), &timer_thread_clock_);
		timer_thread_running_.store(true);
		std::string warning;
		Status applied = apply_priority_to_this_thread(config_.priority);
		if (!applied)
			warning = fmt::format("outsourcing.priority {} not applied ({}); "
					      "the timer thread runs at normal priority",
					      to_string(config_.priority), applied.error().message);
		if (Status confined = confine_thread ? confine_thread() : Status{}; !confined) {
			// start() sees the promise broken and reports this.
			fail(confined.error().message, after_start);
			timer_thread_running_.store(false);
			return;
		}
		started.set_value(std::move(warning));
		after_start = true;

		Status status = loop_until_stopped();
		{
			// Whatever ended the loop, no vCPU stays raised.
			std::lock_guard lock(mutex_);
			close_windows(monotonic_now_ns());
		}
		timer_thread_cpu_ns_.store(clock_now_ns(timer_thread_clock_));
		timer_thread_running_.store(false);
		if (!status)
			fail(status.error().message, after_start);
	} catch (const std::exception &error) {
		fail(fmt::format("outsourcing: timer thread: {}", error.what()), after_start);
	} catch (...) {
		fail("outsourcing: timer thread: unknown exception", after_start);
	}
}

Status TimerService::loop_until_stopped()
{
	// An exception (a hook's) becomes a Status here, so that run() still
	// closes the windows: a vCPU must not stay real-time after the thread
	// that would lower it is gone.
	try {
		return loop();
	} catch (const std::exception &error) {
		return make_error("outsourcing: timer thread: {}", error.what());
	} catch (...) {
		return make_error("outsourcing: timer thread: unknown exception");
	}
}

Status TimerService::submit_wait(Source source)
{
	static_assert(kDoorbell == 0 && kStop == 3 && kDone == 4);
	const int fds[kSourceCount] = {wakeups_.doorbell.fd(), wakeups_.ack.fd(), wakeups_.timer.fd(),
				       wakeups_.stop.fd(), wakeups_.done.fd()};
	io_uring_sqe *sqe = io_uring_get_sqe(wakeups_.ring.get());
	if (!sqe)
		return make_error("outsourcing: timer service submission queue full");
	if (source == kTimer)
		io_uring_prep_poll_add(sqe, fds[source], POLLIN);  // read in loop() when it fires
	else
		io_uring_prep_read(sqe, fds[source], &read_buffers_[source], sizeof(uint64_t), 0);
	io_uring_sqe_set_data64(sqe, source);
	return {};
}

std::optional<uint64_t> TimerService::limit_guest_wakeups(uint64_t now_ns, std::array<bool, kSourceCount> &fired)
{
	bool waiting = false;
	for (Source source : {kDoorbell, kAck, kDone}) {
		paused_[source] = paused_[source] || fired[source];
		fired[source] = false;
		waiting = waiting || paused_[source];
	}
	if (!waiting)
		return std::nullopt;
	if (!guest_wakeups_.take(now_ns)) {
		wakeups_deferred_.fetch_add(1, std::memory_order_relaxed);
		return guest_wakeups_.next_token_ns(now_ns);
	}
	for (Source source : {kDoorbell, kAck, kDone}) {
		fired[source] = paused_[source];
		paused_[source] = false;
	}
	return std::nullopt;
}

Status TimerService::arm_timer(std::optional<uint64_t> deadline_ns)
{
	if (deadline_ns == timer_armed_at_)
		return {};
	KAIROS_TRY(wakeups_.timer.arm_at(deadline_ns));
	timer_armed_at_ = deadline_ns;
	return {};
}

Status TimerService::loop()
{
	for (uint64_t source = 0; source < kSourceCount; ++source)
		KAIROS_TRY(submit_wait(static_cast<Source>(source)));

	for (;;) {
		int submitted = io_uring_submit_and_wait(wakeups_.ring.get(), 1);
		if (submitted < 0 && submitted != -EINTR)
			return errno_error("outsourcing: io_uring_submit_and_wait", -submitted);

		std::array<bool, kSourceCount> fired{};
		io_uring_cqe *cqe = nullptr;
		unsigned head;
		unsigned seen = 0;
		Status read_error;
		io_uring_for_each_cqe(wakeups_.ring.get(), head, cqe)
		{
			++seen;
			uint64_t source = io_uring_cqe_get_data64(cqe);
			if (source >= kSourceCount)
				continue;
			fired[source] = true;
			if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN && read_error)
				read_error = errno_error(
					fmt::format("outsourcing: wait on the {}", source_name(source)), -cqe->res);
		}
		io_uring_cq_advance(wakeups_.ring.get(), seen);
		KAIROS_TRY(read_error);
		if (fired[kStop])
			return {};
		uint64_t now = monotonic_now_ns();
		// Before the held and rate-limit checks: what a (un)registration
		// asked for waits for neither.
		run_scheduler_requests(now);
		if (fired[kTimer]) {
			std::lock_guard lock(mutex_);
			// How late this thread woke: what a window's lead must cover.
			// (A timer armed at a time long past, deadline 0 say,
			// says nothing about wake-ups: such samples are skipped.)
			constexpr uint64_t kMaxWakeSampleNs = 1'000'000'000;
			if (planner_ && timer_armed_at_ && now > *timer_armed_at_ &&
			    now - *timer_armed_at_ < kMaxWakeSampleNs)
				planner_->record_wake_lateness(now - *timer_armed_at_);
		}
		// It went off, so it is disarmed; read, or its poll would fire
		// again at once while nothing re-arms it. (Nothing to read: the
		// poll saw an expiry a re-arm has since cleared; still armed.)
		if (fired[kTimer] && wakeups_.timer.consume() > 0)
			timer_armed_at_.reset();
		if (held_.load()) {
			// Paused: no pass and no timer until release() rings. The
			// reads go on, so the release's doorbell is seen; that
			// includes the reads a rate limit held back for a token,
			// whose timer is disarmed here (release()'s pass is theirs).
			KAIROS_TRY(arm_timer(std::nullopt));
			for (Source source : {kDoorbell, kAck, kDone})
				fired[source] = fired[source] || std::exchange(paused_[source], false);
			for (uint64_t source = 0; source < kSourceCount; ++source)
				if (fired[source])
					KAIROS_TRY(submit_wait(static_cast<Source>(source)));
			continue;
		}

		PassOutcome outcome;
		std::optional<uint64_t> next;
		{
			std::lock_guard lock(mutex_);
			uint64_t advance = advance_.advance_ns();
			outcome = engine_.process(now, {fired[kDoorbell], fired[kAck], fired[kTimer]},
						  hooks_.refresh_time, advance);
			// Windows before the event: the vCPU must already hold its
			// reservation when the upcall makes it runnable.
			std::optional<uint64_t> window_wakeup = plan_windows(now, outcome);
			next = engine_.next_deadline();
			if (next)
				next = *next > advance ? *next - advance : 0;
			if (window_wakeup && (!next || *window_wakeup < *next))
				next = window_wakeup;
		}
		if (outcome.raise_event && hooks_.raise_event)
			hooks_.raise_event();
		if (outcome.requests_waiting)
			ring_doorbell();  // what the guest published while we polled

		std::optional<uint64_t> token = limit_guest_wakeups(now, fired);
		if (token && (!next || *token < *next))
			next = token;
		KAIROS_TRY(arm_timer(next));
		for (uint64_t source = 0; source < kSourceCount; ++source)
			if (fired[source])
				KAIROS_TRY(submit_wait(static_cast<Source>(source)));
	}
}

}  // namespace kairos::outsourcing
