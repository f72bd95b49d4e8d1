#include <catch2/catch.hpp>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/io_uring.h"
#include "base/timer_fd.h"
#include "outsourcing/guest_ring.h"
#include "outsourcing/timer_service.h"
#include "test/unit/test_log.h"

using namespace kairos::outsourcing;
using namespace std::chrono_literals;

namespace {

uint64_t now_ns()
{
	timespec now{};
	clock_gettime(CLOCK_MONOTONIC, &now);
	return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool wait_until(Condition condition, std::chrono::milliseconds timeout = 10s)
{
	auto give_up = std::chrono::steady_clock::now() + timeout;
	while (!condition()) {
		if (std::chrono::steady_clock::now() > give_up)
			return false;
		std::this_thread::sleep_for(1ms);
	}
	return true;
}

// The guest's memory, and the VMM's hooks recording what they were asked.
struct Fixture {
	struct alignas(4096) Area {
		std::array<uint8_t, kRingAreaSize> bytes{};
	};
	std::unique_ptr<Area> area = std::make_unique<Area>();
	std::mutex mutex;
	std::vector<std::string> hook_calls;
	std::atomic<uint64_t> raises{0};
	std::atomic<bool> raise_throws{false};
	std::vector<std::string> failures;  // stopped_on_failure calls
	std::unique_ptr<TimerService> service;
	std::optional<GuestRing> guest;

	explicit Fixture(TimerServiceConfig config = {})
	{
		GuestRing::initialise(area->bytes, UINT32_MAX - 100);
		guest.emplace(std::span<uint8_t>(area->bytes));
		TimerHooks hooks;
		hooks.refresh_time = [this] { record("refresh"); };
		hooks.raise_event = [this] {
			if (raise_throws)
				throw std::runtime_error("irqfd write failed");
			record("raise");
			++raises;
		};
		hooks.stopped_on_failure = [this](const std::string &why) {
			std::lock_guard lock(mutex);
			failures.push_back(why);
		};
		auto created = TimerService::create(config, std::move(hooks), test_log());
		REQUIRE(created.ok());
		service = std::move(created).value();
	}
	~Fixture()
	{
		// The ring outlives the thread's use of it.
		service->stop();
	}

	void record(const char *what)
	{
		std::lock_guard lock(mutex);
		hook_calls.emplace_back(what);
	}
	std::vector<std::string> calls()
	{
		std::lock_guard lock(mutex);
		return hook_calls;
	}

	void start()
	{
		auto started = service->start();
		REQUIRE(started.ok());
		CHECK(started.value().empty());
		REQUIRE(service->attach(area->bytes).ok());
	}
	// Posts every request, ringing the doorbell whenever the ring is full
	// and waiting for the host to make room, and once at the end.
	void post_all(const std::vector<kairos_timer_request> &requests)
	{
		size_t posted = 0;
		while (posted < requests.size()) {
			posted += guest->post(std::span(requests).subspan(posted));
			service->ring_doorbell();
			if (posted < requests.size())
				REQUIRE(wait_until([&] { return guest->request_space() > 0; }));
		}
	}
	std::vector<kairos_timer_completion> take()
	{
		std::vector<kairos_timer_completion> out;
		guest->take(out);
		return out;
	}
};

}  // namespace

TEST_CASE("timers posted through the ring fire after their deadlines; cancelled ones never", "[outsourcing][service]")
{
	Fixture f;
	f.start();
	CHECK(f.service->doorbell_fd() >= 0);
	CHECK(f.service->attached());

	// 40 timers 10-50 ms ahead; every 4th cancelled in the same batch.
	uint64_t base = now_ns();
	std::map<uint32_t, uint64_t> deadlines;
	std::vector<kairos_timer_request> batch;
	for (uint32_t id = 0; id < 40; ++id) {
		uint64_t deadline = base + 10'000'000 + id * 1'000'000ULL;
		batch.push_back(make_request(KAIROS_TIMER_ADD, id, deadline));
		if (id % 4 == 0)
			batch.push_back(make_request(KAIROS_TIMER_DEL, id, 0));
		else
			deadlines[id] = deadline;
	}
	// Two more cancelled by a later doorbell, long before they are due.
	batch.push_back(make_request(KAIROS_TIMER_ADD, 100, base + 500'000'000));
	batch.push_back(make_request(KAIROS_TIMER_ADD, 101, base + 500'000'000));
	f.post_all(batch);
	REQUIRE(wait_until([&] { return f.guest->request_space() == KAIROS_RING_REQUESTS; }));
	f.post_all({make_request(KAIROS_TIMER_DEL, 100, 0), make_request(KAIROS_TIMER_MOD, 101, base + 20'000'000),
		    make_request(KAIROS_TIMER_DEL, 101, 0)});
	// Timer 101 re-armed and then cancelled: never fires either.

	std::map<uint32_t, kairos_timer_completion> fired;
	bool duplicate = false;
	bool unexpected = false;
	REQUIRE(wait_until([&] {
		for (const kairos_timer_completion &completion : f.take()) {
			duplicate |= fired.contains(completion.timer_id);
			unexpected |= !deadlines.contains(completion.timer_id);
			fired[completion.timer_id] = completion;
		}
		return fired.size() >= deadlines.size();
	}));
	// Past the cancelled ones' deadlines, with margin: still nothing more.
	while (now_ns() < base + 550'000'000)
		std::this_thread::sleep_for(10ms);
	for (const kairos_timer_completion &completion : f.take())
		fired[completion.timer_id] = completion, unexpected = true;

	CHECK_FALSE(duplicate);
	CHECK_FALSE(unexpected);
	CHECK(fired.size() == deadlines.size());
	for (const auto &[id, completion] : fired) {
		INFO("timer " << id);
		CHECK(completion.kind == KAIROS_COMPLETION_EXPIRED);
		CHECK(completion.result == 0);
		CHECK(completion.time_ns >= deadlines[id]);  // never early
	}

	TimerStats stats = f.service->stats();
	CHECK(stats.adds == 42);
	CHECK(stats.mods == 1);
	CHECK(stats.dels == 12);
	CHECK(stats.expiries == deadlines.size());
	CHECK(stats.delivered == deadlines.size());
	CHECK(stats.errors_no_entry == 0);
	CHECK(stats.armed == 0);
	CHECK(stats.lateness.samples == deadlines.size());
	CHECK(stats.lateness.p50_ns <= stats.lateness.max_ns);
	CHECK(f.service->failure().empty());

	// The hooks: time refreshed before each raise.
	std::vector<std::string> calls = f.calls();
	REQUIRE_FALSE(calls.empty());
	size_t first_raise = std::find(calls.begin(), calls.end(), "raise") - calls.begin();
	REQUIRE(first_raise >= 1);
	CHECK(calls[first_raise - 1] == "refresh");

	f.service->ack();
	REQUIRE(wait_until([&] { return f.service->stats().acks == 1; }));
}

TEST_CASE("a full completion ring: expiries held, event kept raised, all delivered once after the ack",
	  "[outsourcing][service]")
{
	constexpr uint32_t kTimers = 600;
	Fixture f;
	f.start();
	std::vector<kairos_timer_request> requests;
	for (uint32_t id = 0; id < kTimers; ++id)
		requests.push_back(make_request(KAIROS_TIMER_ADD, id, 0));  // due at once
	f.post_all(requests);
	REQUIRE(wait_until([&] { return f.service->stats().expiries == kTimers; }));

	TimerStats stats = f.service->stats();
	CHECK(stats.coalesced == kTimers - KAIROS_RING_COMPLETIONS);
	CHECK(stats.held == kTimers - KAIROS_RING_COMPLETIONS);
	CHECK(stats.delivered == KAIROS_RING_COMPLETIONS);
	CHECK(stats.immediate == kTimers);
	CHECK(f.raises.load() >= 1);

	std::vector<kairos_timer_completion> seen = f.take();
	CHECK(seen.size() == KAIROS_RING_COMPLETIONS);
	uint64_t raises_before = f.raises.load();
	f.service->ack();
	REQUIRE(wait_until([&] { return f.service->stats().held == 0; }));
	REQUIRE(wait_until([&] { return f.raises.load() > raises_before; }));
	std::vector<kairos_timer_completion> rest = f.take();
	seen.insert(seen.end(), rest.begin(), rest.end());

	REQUIRE(seen.size() == kTimers);
	std::vector<int> count(kTimers, 0);
	for (const kairos_timer_completion &completion : seen) {
		REQUIRE(completion.timer_id < kTimers);
		++count[completion.timer_id];
	}
	CHECK(std::all_of(count.begin(), count.end(), [](int n) { return n == 1; }));
	CHECK(f.service->stats().delivered == kTimers);
}

// The io_uring workers of this process (threads named iou-wrk-<tid>).
std::set<std::string> io_uring_workers()
{
	std::set<std::string> workers;
	for (const auto &task : std::filesystem::directory_iterator("/proc/self/task")) {
		std::ifstream comm(task.path() / "comm");
		std::string name;
		if (std::getline(comm, name) && name.starts_with("iou-wrk"))
			workers.insert(task.path().filename().string() + " " + name);
	}
	return workers;
}

// io_uring hands a read of a timerfd to an io-wq worker (a timerfd cannot
// be read without blocking on Linux 6.1), a normal-priority thread that
// every expiry would wait for: the timer thread polls its timerfd instead,
// and no worker is started for it.
TEST_CASE("expiries wake the timer thread without an io_uring worker in between", "[outsourcing][service]")
{
	std::set<std::string> before = io_uring_workers();
	Fixture f;
	f.start();
	for (uint32_t id = 1; id <= 3; ++id) {
		f.post_all({make_request(KAIROS_TIMER_ADD, id, now_ns() + 5'000'000)});
		REQUIRE(wait_until([&] { return f.guest->completions_available() > 0; }));
		REQUIRE(f.take().size() == 1);
	}
	// None new (one that was there may have ended meanwhile).
	std::set<std::string> after = io_uring_workers();
	CHECK(std::includes(before.begin(), before.end(), after.begin(), after.end()));
	CHECK(f.service->stats().delivered == 3);
}

// The control for the test above (hidden: run by the guest test
// timer-thread-kernel only): on this kernel, an io_uring read of a blocking
// timerfd starts an io-wq worker. Where it does not (a timerfd with
// read_iter, Linux 6.7 and later), the test above cannot fail.
TEST_CASE("control: an io_uring read of a blocking timerfd starts an io-wq worker", "[.][io-wq-control]")
{
	std::set<std::string> before = io_uring_workers();
	auto timer = kairos::TimerFd::create(kairos::TimerFd::Mode::Blocking, "the control's timer");
	REQUIRE(timer.ok());
	auto ring = kairos::IoUring::create(2, "the control's ring", {IORING_OP_READ});
	REQUIRE(ring.ok());
	REQUIRE(timer->arm_at(now_ns() + 20'000'000).ok());
	uint64_t expirations = 0;
	io_uring_sqe *sqe = io_uring_get_sqe(ring->get());
	REQUIRE(sqe != nullptr);
	io_uring_prep_read(sqe, timer->fd(), &expirations, sizeof expirations, 0);
	REQUIRE(io_uring_submit(ring->get()) == 1);
	io_uring_cqe *cqe = nullptr;
	REQUIRE(io_uring_wait_cqe(ring->get(), &cqe) == 0);
	CHECK(cqe->res == sizeof expirations);
	io_uring_cqe_seen(ring->get(), cqe);
	// io_uring polls the timerfd first, then hands the read to a worker
	// once it is readable; the worker stays a while after its read.
	CHECK(io_uring_workers().size() > before.size());
}

TEST_CASE("the ring can be attached and detached while the timer thread runs", "[outsourcing][service]")
{
	Fixture f;
	f.start();
	f.service->detach();  // the guest re-initialises the area only while it is not registered
	for (int round = 0; round < 100; ++round) {
		GuestRing::initialise(f.area->bytes, static_cast<uint32_t>(round) * 1000);
		f.guest.emplace(std::span<uint8_t>(f.area->bytes));
		REQUIRE(f.service->attach(f.area->bytes).ok());
		uint64_t now = now_ns();
		for (uint32_t id = 0; id < 5; ++id)
			REQUIRE(f.guest->post(make_request(KAIROS_TIMER_ADD, id, now + id * 100'000)));
		f.service->ring_doorbell();
		if (round % 2)
			std::this_thread::sleep_for(1ms);
		f.service->detach();
	}
	CHECK_FALSE(f.service->attached());
	// Once detached the area is the VMM's again: scribbling on it is safe.
	std::fill(f.area->bytes.begin(), f.area->bytes.end(), uint8_t{0xff});
	f.service->ring_doorbell();
	f.service->ack();
	std::this_thread::sleep_for(5ms);
	CHECK(f.service->failure().empty());
	CHECK(f.service->stats().armed == 0);
}

TEST_CASE("the timer service starts once and stops idempotently", "[outsourcing][service]")
{
	Fixture f;
	f.start();
	auto again = f.service->start();
	REQUIRE_FALSE(again.ok());
	CHECK_THAT(again.error().message, Catch::Contains("already started"));
	f.service->stop();
	f.service->stop();
	CHECK(f.service->failure().empty());
}

TEST_CASE("a raised priority is applied or refused with a warning, never an error", "[outsourcing][service]")
{
	TimerServiceConfig config;
	config.priority = Priority{Priority::Policy::Nice, -1};
	Fixture f(config);
	auto started = f.service->start();
	REQUIRE(started.ok());
	// As root it is applied; elsewhere it is refused and reported in one line.
	if (!started.value().empty()) {
		CHECK_THAT(started.value(), Catch::Contains("outsourcing.priority nice:-1 not applied"));
		CHECK(started.value().find('\n') == std::string::npos);
	}
}

TEST_CASE("a hook that throws stops the timer thread with a reason, not a crash", "[outsourcing][service]")
{
	TimerHooks hooks;
	hooks.raise_event = [] { throw std::runtime_error("irqfd write failed"); };
	auto created = TimerService::create({}, std::move(hooks), test_log());
	REQUIRE(created.ok());
	std::unique_ptr<TimerService> service = std::move(created).value();
	struct alignas(4096) Area {
		std::array<uint8_t, kRingAreaSize> bytes{};
	};
	auto area = std::make_unique<Area>();
	GuestRing::initialise(area->bytes);
	GuestRing guest(area->bytes);
	REQUIRE(service->start().ok());
	REQUIRE(service->attach(area->bytes).ok());
	REQUIRE(guest.post(make_request(KAIROS_TIMER_ADD, 1, 0)));
	service->ring_doorbell();
	REQUIRE(wait_until([&] { return !service->failure().empty(); }));
	CHECK_THAT(service->failure(), Catch::Contains("irqfd write failed"));
	service->stop();
}

namespace {

// Records what the timer service asked of the vCPU threads, and when.
struct FakeScheduler : VcpuScheduler {
	struct Event {
		bool raise;
		uint32_t vcpu;
		uint64_t at_ns;
		pid_t tid;  // the thread that asked
	};
	std::mutex mutex;
	std::vector<Event> events;
	bool refuse = false;
	std::optional<uint32_t> no_bandwidth_for;  // this vCPU's raises are refused admission

	uint32_t vcpu_count() const override { return 2; }
	kairos::Result<bool> raise(uint32_t vcpu) override
	{
		if (refuse)
			return kairos::make_error("Operation not permitted");
		if (no_bandwidth_for == vcpu)
			return false;
		std::lock_guard lock(mutex);
		events.push_back({true, vcpu, now_ns(), gettid()});
		return true;
	}
	kairos::Status lower(uint32_t vcpu) override
	{
		std::lock_guard lock(mutex);
		events.push_back({false, vcpu, now_ns(), gettid()});
		return {};
	}
	uint64_t cpu_time_ns(uint32_t) const override { return 0; }
	WindowConfig::Policy policy() const override { return WindowConfig::Policy::Deadline; }
	std::vector<Event> snapshot()
	{
		std::lock_guard lock(mutex);
		return events;
	}
};

TimerServiceConfig window_config()
{
	TimerServiceConfig config;
	config.vcpu_count = 2;
	config.window.lead_ns = 20'000'000;  // 20 ms: robust on a loaded CI machine
	config.window.timeout_ns = 1'000'000'000;
	config.window.runtime_ns = 400'000'000;  // a budget the fake CPU clock never touches
	config.window.period_ns = 1'000'000'000;
	return config;
}

// A started service whose windows go to a FakeScheduler, with the upcall
// on vCPU 0. probe_events: what the start-up check did (a raise and a
// lower of vCPU 0, unless refused).
struct WindowFixture : Fixture {
	FakeScheduler *scheduler;
	size_t probe_events = 0;

	explicit WindowFixture(std::unique_ptr<FakeScheduler> owned = std::make_unique<FakeScheduler>())
		: Fixture(window_config()), scheduler(owned.get())
	{
		start();
		REQUIRE(service->set_vcpu_scheduler(std::move(owned)).empty());
		REQUIRE(service->set_upcall_vcpu(0));
		probe_events = scheduler->snapshot().size();
	}
};

}  // namespace

TEST_CASE("a priority window opens before the timer fires and closes when the guest reports done",
	  "[outsourcing][service][window]")
{
	WindowFixture f;
	FakeScheduler *scheduler = f.scheduler;
	size_t probe_events = f.probe_events;
	CHECK(f.service->window_policy() == "deadline");
	CHECK_FALSE(f.service->set_upcall_vcpu(2));  // not a vCPU of this VM
	CHECK(probe_events == 2);                    // the start-up check raised and lowered vCPU 0

	uint64_t deadline = now_ns() + 100'000'000;
	f.post_all({make_request(KAIROS_TIMER_ADD, 7, deadline, 1)});
	REQUIRE(wait_until([&] { return f.guest->completions_available() > 0; }));
	uint64_t fired_seen = now_ns();
	auto before_done = scheduler->snapshot();
	REQUIRE(before_done.size() == probe_events + 2);
	for (size_t i = probe_events; i < before_done.size(); ++i) {
		CHECK(before_done[i].raise);
		CHECK(before_done[i].at_ns < deadline);  // held before it competes, not at expiry
	}
	CHECK((before_done[probe_events].vcpu + before_done[probe_events + 1].vcpu) == 1);  // vCPUs 0 and 1
	CHECK(fired_seen >= deadline);
	auto completions = f.take();
	REQUIRE(completions.size() == 1);

	// Not done yet: still raised, and reports are wanted. Then the guest reports.
	std::this_thread::sleep_for(20ms);
	CHECK(scheduler->snapshot().size() == probe_events + 2);
	CHECK(std::atomic_ref<__u32>(f.guest->header().host_wants_done).load() == 1);
	std::atomic_ref<__u32>(f.guest->header().work_done).store(1, std::memory_order_release);
	f.service->report_done();
	REQUIRE(wait_until([&] { return scheduler->snapshot().size() == probe_events + 4; }));
	auto after = scheduler->snapshot();
	CHECK_FALSE(after[probe_events + 2].raise);
	CHECK_FALSE(after[probe_events + 3].raise);
	CHECK(std::atomic_ref<__u32>(f.guest->header().host_wants_done).load() == 0);
	WindowStats stats = f.service->window_stats();
	CHECK(stats.opened == 1);
	CHECK(stats.closed_by_guest == 1);
}

TEST_CASE("a vCPU refused admission is counted as wanted, and the window opens without it",
	  "[outsourcing][service][window]")
{
	auto owned = std::make_unique<FakeScheduler>();
	owned->no_bandwidth_for = 1;  // the probe raises vCPU 0 only
	WindowFixture f(std::move(owned));
	FakeScheduler *scheduler = f.scheduler;
	size_t probe_events = f.probe_events;

	f.post_all({make_request(KAIROS_TIMER_ADD, 7, now_ns() + 50'000'000, 1)});
	REQUIRE(wait_until([&] { return f.guest->completions_available() > 0; }));
	auto events = scheduler->snapshot();
	REQUIRE(events.size() == probe_events + 1);  // vCPU 0 raised, vCPU 1 not
	CHECK(events[probe_events].raise);
	CHECK(events[probe_events].vcpu == 0);
	CHECK(f.service->window_raises() == std::vector<uint64_t>{1, 0});  // this window (the probe is not one)
	CHECK(f.service->window_refusals() == std::vector<uint64_t>{0, 1});
	CHECK(f.service->window_stats().admission_refusals == 1);
}

TEST_CASE("windows are off, said once, when the reservation is refused", "[outsourcing][service][window]")
{
	Fixture f(window_config());
	auto owned = std::make_unique<FakeScheduler>();
	owned->refuse = true;
	f.start();
	std::string warning = f.service->set_vcpu_scheduler(std::move(owned));
	CHECK_THAT(warning, Catch::Contains("not applied (Operation not permitted)"));
	CHECK(f.service->window_policy() == "off");
	// Timers still work.
	f.post_all({make_request(KAIROS_TIMER_ADD, 3, now_ns() + 1'000'000, 0)});
	REQUIRE(wait_until([&] { return f.guest->completions_available() > 0; }));
}

TEST_CASE("vCPUs of a guest without a ring are never touched; the probe waits for the ring",
	  "[outsourcing][service][window]")
{
	Fixture f(window_config());
	auto owned = std::make_unique<FakeScheduler>();
	FakeScheduler *scheduler = owned.get();
	REQUIRE(f.service->start().ok());
	CHECK(f.service->set_vcpu_scheduler(std::move(owned)).empty());
	CHECK(scheduler->snapshot().empty());
	CHECK(f.service->window_policy() == "off");
	REQUIRE(f.service->attach(f.area->bytes).ok());
	REQUIRE(wait_until([&] { return scheduler->snapshot().size() == 2; }));  // raised and lowered once
	CHECK(f.service->window_policy() == "deadline");
	// By the timer thread, not the caller of attach (a vCPU thread in a
	// run, which may not call sched_setattr).
	for (const FakeScheduler::Event &event : scheduler->snapshot())
		CHECK(event.tid != gettid());
}

TEST_CASE("detaching the ring mid-window has the timer thread close it", "[outsourcing][service][window]")
{
	WindowFixture f;
	FakeScheduler *scheduler = f.scheduler;
	size_t probe_events = f.probe_events;
	// A window opens 20 ms ahead of the timer; the guest never reports
	// done, and the 1 s timeout is far.
	f.post_all({make_request(KAIROS_TIMER_ADD, 7, now_ns() + 200'000'000, 1)});
	REQUIRE(wait_until([&] { return scheduler->snapshot().size() == probe_events + 2; }));
	f.service->detach();  // the module unloads
	REQUIRE(wait_until([&] { return scheduler->snapshot().size() == probe_events + 4; }));
	auto events = scheduler->snapshot();
	for (size_t i = probe_events + 2; i < events.size(); ++i) {
		CHECK_FALSE(events[i].raise);
		CHECK(events[i].tid != gettid());
	}
	CHECK(f.service->window_stats().closed_by_detach == 1);
}

TEST_CASE("a timer thread that dies after start tells the VMM once, and leaves no vCPU raised",
	  "[outsourcing][service][window]")
{
	WindowFixture f;
	FakeScheduler *scheduler = f.scheduler;
	size_t probe_events = f.probe_events;

	// The window opens before the deadline; the expiry's event hook throws.
	f.raise_throws = true;
	f.post_all({make_request(KAIROS_TIMER_ADD, 7, now_ns() + 100'000'000, 1)});
	REQUIRE(wait_until([&] { return !f.service->failure().empty(); }));
	f.service->stop();
	auto events = scheduler->snapshot();
	REQUIRE(events.size() > probe_events);
	int raised = 0;
	for (size_t i = probe_events; i < events.size(); ++i)
		raised += events[i].raise ? 1 : -1;
	CHECK(raised == 0);  // every raise was lowered by the dying thread
	std::lock_guard lock(f.mutex);
	REQUIRE(f.failures.size() == 1);
	CHECK_THAT(f.failures[0], Catch::Contains("irqfd write failed"));
	CHECK(f.failures[0] == f.service->failure());
}

// A doorbell the rate limit deferred has no read in flight until its
// token; a pause then used to disarm the token's timer, and the resume's
// doorbell found nobody listening: the thread slept until the stop.
TEST_CASE("a pause while the guest's wake-ups are deferred loses nothing after the resume",
	  "[outsourcing][service][limiter]")
{
	TimerServiceConfig config;
	config.guest_wakeups_hz = 100;  // a token every 10 ms
	Fixture f(config);
	f.start();
	uint64_t started = now_ns();
	while (f.service->stats().guest_wakeups_deferred == 0 && now_ns() - started < 2'000'000'000)
		f.service->ring_doorbell();
	REQUIRE(f.service->stats().guest_wakeups_deferred > 0);
	f.service->ring_doorbell();  // deferred until the next token
	f.service->hold();
	std::this_thread::sleep_for(50ms);  // the token's wake-up comes while paused
	f.service->release();
	f.post_all({make_request(KAIROS_TIMER_ADD, 1, now_ns() + 1'000'000, 0)});
	CHECK(wait_until([&] { return f.guest->completions_available() > 0; }, 3s));
}

TEST_CASE("a guest ringing the doorbell in a loop gets passes at the configured rate, and loses nothing",
	  "[outsourcing][service][limiter]")
{
	// Issue 12, #5: each doorbell write used to cost the timer thread a pass.
	TimerServiceConfig config;
	config.guest_wakeups_hz = 1000;
	Fixture f(config);
	f.start();
	constexpr uint32_t kRequests = 2000;
	uint64_t started = now_ns();
	uint64_t rung = 0;
	uint32_t posted = 0;
	while (now_ns() - started < 300'000'000) {
		// Ask for timers far out while storming: requests must all arrive.
		if (posted < kRequests && f.guest->request_space() > 0 &&
		    f.guest->post(make_request(KAIROS_TIMER_ADD, posted + 1, now_ns() + 3'600'000'000'000)))
			++posted;
		f.service->ring_doorbell();
		++rung;
	}
	double seconds = static_cast<double>(now_ns() - started) / 1e9;
	REQUIRE(wait_until([&] { return f.service->stats().adds == posted; }));
	TimerStats stats = f.service->stats();
	// The figure the issue asks for (printed: run the test binary with -s).
	INFO("doorbells rung " << rung << " in " << seconds << " s; passes " << stats.doorbells << ", deferred "
			       << stats.guest_wakeups_deferred << ", timer thread CPU "
			       << f.service->timer_thread_cpu_ns() / 1000 << " us");
	CHECK(rung > 10'000);  // a storm, not a trickle
	// The limit, plus the burst, plus the passes after the storm.
	CHECK(stats.doorbells <= static_cast<uint64_t>(1000 * seconds) + kGuestWakeupBurst + 4);
	CHECK(stats.guest_wakeups_deferred > 0);
	CHECK(stats.adds == posted);
	CHECK(posted > 100);

	// Timers still fire on time-scale terms: one due now is delivered.
	f.post_all({make_request(KAIROS_TIMER_ADD, kRequests + 7, now_ns())});
	REQUIRE(wait_until([&] { return f.guest->completions_available() > 0; }));
}

// kairos ctl pause: a timer that falls due while the service is held is
// not delivered then (no completion, no event), and fires once at release.
TEST_CASE("a held service delivers nothing; at release what fell due fires once", "[outsourcing][service]")
{
	Fixture f;
	f.start();
	uint64_t deadline = now_ns() + 30'000'000;
	f.post_all({make_request(KAIROS_TIMER_ADD, 7, deadline)});
	REQUIRE(wait_until([&] { return f.service->stats().adds == 1; }));
	f.service->hold();
	while (now_ns() < deadline + 100'000'000)
		std::this_thread::sleep_for(10ms);
	CHECK(f.take().empty());
	CHECK(f.raises == 0);
	CHECK(f.service->stats().expiries == 0);

	f.service->release();
	std::vector<kairos_timer_completion> fired;
	REQUIRE(wait_until([&] {
		for (const auto &completion : f.take())
			fired.push_back(completion);
		return !fired.empty();
	}));
	std::this_thread::sleep_for(50ms);
	for (const auto &completion : f.take())
		fired.push_back(completion);
	REQUIRE(fired.size() == 1);
	CHECK(fired[0].timer_id == 7);
	CHECK(fired[0].kind == KAIROS_COMPLETION_EXPIRED);
	CHECK(fired[0].time_ns >= deadline + 100'000'000);  // after the hold, not during
	CHECK(f.raises >= 1);
	f.service->release();  // not held: nothing more happens
	CHECK(f.service->failure().empty());
}
