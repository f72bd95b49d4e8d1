#include <catch2/catch.hpp>

#include <map>

#include "outsourcing/window.h"

using namespace kairos::outsourcing;

namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kMs = 1000 * kUs;
constexpr uint64_t kStart = 1'000'000 * kMs;  // any monotonic time

WindowConfig config_with(uint64_t lead_ns = 200 * kUs)
{
	WindowConfig config;
	config.policy = WindowConfig::Policy::Deadline;
	config.runtime_ns = 1 * kMs;
	config.period_ns = 10 * kMs;
	config.lead_ns = lead_ns;
	config.timeout_ns = 2 * kMs;
	return config;
}

// A planner over `vcpus` vCPUs whose CPU clocks the test moves by hand.
struct Rig {
	WindowPlanner planner;
	std::map<uint32_t, uint64_t> cpu;  // vCPU -> CPU time (ns)
	WindowInputs inputs;

	explicit Rig(WindowConfig config = config_with(), uint32_t vcpus = 2) : planner(config, vcpus, kStart)
	{
		inputs.now_ns = kStart;
	}
	WindowActions pass()
	{
		return planner.update(inputs, [this](uint32_t vcpu) { return cpu[vcpu]; });
	}
	void at(uint64_t now) { inputs.now_ns = now; }
	void next(uint64_t fire_ns, uint16_t vcpu = KAIROS_VCPU_ANY)
	{
		inputs.next_fire_ns = fire_ns;
		inputs.next_vcpu = vcpu;
	}
	void none() { inputs.next_fire_ns.reset(); }
	// The timer fired: one more expiry delivered, nothing armed after it.
	void fire(uint16_t vcpu = KAIROS_VCPU_ANY)
	{
		++inputs.delivered;
		inputs.fired_vcpus.reset();
		if (vcpu != KAIROS_VCPU_ANY)
			inputs.fired_vcpus.set(vcpu);
		none();
	}
	void done() { ++inputs.work_done; }
	// `vcpu` runs `ns` of CPU, in as much wall time.
	void run(uint64_t ns, uint32_t vcpu = 0)
	{
		cpu[vcpu] += ns;
		at(inputs.now_ns + ns);
	}
	// A window opens 200 us (the lead) before `fire`, the timer fires;
	// returns what opened.
	VcpuSet open_then_fire(uint64_t fire, uint16_t vcpu = KAIROS_VCPU_ANY)
	{
		next(fire, vcpu);
		at(fire - 200 * kUs);
		VcpuSet opened = pass().open;
		at(fire);
		this->fire(vcpu);
		pass();
		return opened;
	}
};

VcpuSet set_of(std::initializer_list<uint32_t> vcpus)
{
	VcpuSet set;
	for (uint32_t vcpu : vcpus)
		set.set(vcpu);
	return set;
}

}  // namespace

TEST_CASE("window: opens a lead before the fire, on the upcall and the named vCPU", "[window]")
{
	Rig rig;
	uint64_t fire = kStart + 10 * kMs;
	rig.next(fire, 1);
	CHECK_FALSE(rig.pass().any());  // 10 ms away: nothing yet
	REQUIRE(rig.planner.next_wakeup(rig.inputs) == fire - 200 * kUs);

	rig.at(fire - 200 * kUs);
	WindowActions opened = rig.pass();
	CHECK(opened.open == set_of({0, 1}));  // upcall vCPU 0 and the sleeper's vCPU 1
	CHECK(opened.close.none());
	CHECK(rig.planner.is_open());

	// The timer fires; the guest has not run the work yet: stays open.
	rig.at(fire);
	rig.fire(1);
	CHECK_FALSE(rig.pass().any());
	CHECK(rig.planner.is_open());

	// The guest reports the work done: one lead later, with nothing
	// armed meanwhile, it closes, by the guest.
	rig.at(fire + 300 * kUs);
	rig.done();
	CHECK_FALSE(rig.pass().any());
	REQUIRE(rig.planner.next_wakeup(rig.inputs) == fire + 500 * kUs);
	rig.at(fire + 500 * kUs);
	WindowActions closed = rig.pass();
	CHECK(closed.close == set_of({0, 1}));
	CHECK_FALSE(rig.planner.is_open());
	WindowStats stats = rig.planner.stats();
	CHECK(stats.opened == 1);
	CHECK(stats.closed_by_guest == 1);
	CHECK(stats.closed_by_timeout == 0);
	CHECK(stats.open_ns == 700 * kUs);
}

TEST_CASE("window: a periodic sleeper's next deadline, armed after its report, keeps the window", "[window]")
{
	Rig rig;
	uint64_t fire = kStart + 10 * kMs;
	REQUIRE(rig.open_then_fire(fire, 1) == set_of({0, 1}));
	rig.done();
	rig.at(fire + 100 * kUs);
	CHECK_FALSE(rig.pass().any());  // done, nothing armed: waits one lead
	// The woken task arms its next 300 us sleep within that lead.
	rig.at(fire + 250 * kUs);
	rig.next(fire + 550 * kUs, 1);
	CHECK_FALSE(rig.pass().any());
	// Past where the lead after the report ended: the deadline keeps it.
	rig.at(fire + 400 * kUs);
	CHECK_FALSE(rig.pass().any());
	CHECK(rig.planner.is_open());
	rig.at(fire + 550 * kUs);
	rig.fire(1);
	CHECK_FALSE(rig.pass().any());
	rig.done();
	rig.at(fire + 600 * kUs);
	CHECK_FALSE(rig.pass().any());
	rig.at(fire + 800 * kUs);
	CHECK(rig.pass().close == set_of({0, 1}));
	CHECK(rig.planner.stats().opened == 1);
	CHECK(rig.planner.stats().closed_by_guest == 1);
}

TEST_CASE("window: a guest that never reports done loses it after the timeout", "[window]")
{
	Rig rig;
	uint64_t fire = kStart + 1 * kMs;
	rig.next(fire);
	rig.at(fire - 200 * kUs);
	REQUIRE(rig.pass().open == set_of({0}));
	rig.at(fire);
	rig.fire();
	CHECK_FALSE(rig.pass().any());
	// The charge comes first (0.75 ms of budget + 0.125), the timeout at 2 ms.
	REQUIRE(rig.planner.next_wakeup(rig.inputs) == fire + 875 * kUs);
	rig.at(fire + 875 * kUs);
	CHECK_FALSE(rig.pass().any());
	REQUIRE(rig.planner.next_wakeup(rig.inputs) <= fire + 2 * kMs);

	rig.at(fire + 2 * kMs - 1);
	CHECK_FALSE(rig.pass().any());
	rig.at(fire + 2 * kMs);
	CHECK(rig.pass().close == set_of({0}));
	CHECK(rig.planner.stats().closed_by_timeout == 1);

	// What it owed is forgiven: the next window opens and closes normally,
	// and the late report of the old work changes nothing.
	uint64_t second = fire + 5 * kMs;
	REQUIRE(rig.open_then_fire(second) == set_of({0}));
	rig.done();  // the old expiry, reported late
	rig.done();  // this one
	rig.at(second + 100 * kUs);
	CHECK_FALSE(rig.pass().any());
	rig.at(second + 300 * kUs);
	CHECK(rig.pass().close == set_of({0}));
	CHECK(rig.planner.stats().closed_by_guest == 1);
}

TEST_CASE("window: the lead after a report never outlasts the timeout", "[window]")
{
	Rig rig;  // lead 200 us, timeout 2 ms
	uint64_t fire = kStart + 1 * kMs;
	REQUIRE(rig.open_then_fire(fire) == set_of({0}));
	// The report comes just before the timeout: the window closes at the
	// timeout, not a lead later, and no pass is asked for in the past.
	rig.at(fire + 1900 * kUs);
	rig.done();
	CHECK_FALSE(rig.pass().any());
	CHECK(rig.planner.next_wakeup(rig.inputs) > rig.inputs.now_ns);
	rig.at(fire + 2 * kMs);
	CHECK(rig.pass().close == set_of({0}));
	CHECK(rig.planner.stats().closed_by_guest == 1);
	CHECK(rig.planner.stats().closed_by_timeout == 0);
}

TEST_CASE("window: deadlines close together share one window", "[window]")
{
	Rig rig;
	uint64_t first = kStart + 1 * kMs;
	rig.next(first);
	rig.at(first - 200 * kUs);
	REQUIRE(rig.pass().open.any());
	rig.at(first);
	rig.fire();
	rig.next(first + 300 * kUs);  // the next one is due soon
	rig.pass();
	rig.done();
	rig.at(first + 100 * kUs);
	CHECK_FALSE(rig.pass().close.any());  // kept open: the next fires within 2 leads
	rig.at(first + 300 * kUs);
	rig.fire();
	rig.pass();
	rig.done();
	rig.at(first + 400 * kUs);
	CHECK_FALSE(rig.pass().close.any());
	rig.at(first + 600 * kUs);
	CHECK(rig.pass().close.any());
	CHECK(rig.planner.stats().opened == 1);
	CHECK(rig.planner.stats().closed_by_guest == 1);
}

TEST_CASE("window: the CPU budget cuts a window and refuses the next until it refills", "[window]")
{
	Rig rig;  // 1 ms per 10 ms
	uint64_t fire = kStart + 1 * kMs;
	REQUIRE(rig.open_then_fire(fire) == set_of({0}));
	// The guest burns 1.5 ms of CPU inside the window without reporting.
	rig.cpu[0] += 1500 * kUs;
	rig.at(fire + 1500 * kUs);
	WindowActions cut = rig.pass();
	CHECK(cut.close == set_of({0}));
	CHECK(rig.planner.stats().budget_exhausted == 1);
	CHECK(rig.planner.stats().closed_by_budget == 1);
	CHECK(rig.planner.stats().cpu_ns == 1500 * kUs);

	// Refused while the bucket is below zero (it refills 0.1 ns per ns).
	rig.done();
	uint64_t next = fire + 2 * kMs;
	rig.next(next);
	rig.at(next - 200 * kUs);
	CHECK_FALSE(rig.pass().open.any());
	// Kairos's bucket is 3/4 of the runtime: 0.75 ms, refilled at 0.075
	// ns per ns. At the cut it held 0.75 - 1.5 = -0.75 ms, which takes
	// 10 ms to come back.
	rig.at(fire + 1500 * kUs + 9900 * kUs);
	rig.next(rig.inputs.now_ns + 100 * kUs);
	CHECK_FALSE(rig.pass().open.any());
	rig.at(fire + 1500 * kUs + 10100 * kUs);
	rig.next(rig.inputs.now_ns + 100 * kUs);
	CHECK(rig.pass().open == set_of({0}));
	CHECK(rig.planner.stats().budget_exhausted == 1);  // one episode
}

TEST_CASE("window: an open window is charged before its bucket could run dry", "[window]")
{
	Rig rig;
	rig.next(kStart + 10 * kMs);
	rig.at(kStart + 10 * kMs - 200 * kUs);
	REQUIRE(rig.pass().open.any());
	// 0.75 ms in the bucket, 0.25 ms more before the kernel's runtime:
	// look again within 0.75 + 0.125 ms, not at the timeout.
	CHECK(rig.planner.next_wakeup(rig.inputs) == rig.inputs.now_ns + 875 * kUs);
	rig.run(700 * kUs);
	rig.pass();
	// Nearly dry: the margin only.
	CHECK(rig.planner.next_wakeup(rig.inputs) == rig.inputs.now_ns + 50 * kUs + 125 * kUs);
}

TEST_CASE("window: a FIFO window's bucket is the whole runtime, with no CBS margin", "[window]")
{
	WindowConfig fifo = config_with();
	fifo.policy = WindowConfig::Policy::Fifo;
	Rig rig(fifo);  // 1 ms per 10 ms, all of it Kairos's
	REQUIRE(rig.open_then_fire(kStart + 10 * kMs) == set_of({0}));
	// Nothing behind the bucket: look again when it could run dry.
	CHECK(rig.planner.next_wakeup(rig.inputs) == rig.inputs.now_ns + 1000 * kUs);
	// 0.9 ms would have emptied a DEADLINE window's 0.75 ms bucket.
	rig.run(900 * kUs);
	CHECK_FALSE(rig.pass().close.any());
	CHECK(rig.planner.next_wakeup(rig.inputs) == rig.inputs.now_ns + 100 * kUs);
	// The configured runtime is the bound: past it, the window ends.
	rig.run(150 * kUs);
	CHECK(rig.pass().close == set_of({0}));
	CHECK(rig.planner.stats().closed_by_budget == 1);
	CHECK(rig.planner.stats().cpu_ns == 1050 * kUs);
}

TEST_CASE("window: a guest that claims more work done than delivered gets nothing for it", "[window]")
{
	Rig rig;
	rig.inputs.work_done = 1000;  // nonsense
	uint64_t fire = kStart + 1 * kMs;
	rig.next(fire);
	rig.at(fire - 200 * kUs);
	REQUIRE(rig.pass().open.any());
	rig.at(fire);
	rig.fire();
	CHECK_FALSE(rig.pass().close.any());  // the delivered expiry is still owed
	rig.done();
	rig.at(fire + 10 * kUs);
	CHECK_FALSE(rig.pass().close.any());  // done: one lead for a next deadline
	rig.at(fire + 210 * kUs);
	CHECK(rig.pass().close.any());
}

TEST_CASE("window: close_all ends an open window as a detach", "[window]")
{
	Rig rig;
	rig.next(kStart + 100 * kUs);
	REQUIRE(rig.pass().open.any());
	WindowActions closed = rig.planner.close_all(kStart + 50 * kUs, [](uint32_t) { return 0; });
	CHECK(closed.close == set_of({0}));
	CHECK(rig.planner.stats().closed_by_detach == 1);
	CHECK_FALSE(rig.planner.is_open());
}

TEST_CASE("window: the upcall vCPU follows the guest's choice; bad ids are ignored", "[window]")
{
	Rig rig(config_with(), 4);
	rig.planner.set_upcall_vcpu(3);
	rig.next(kStart + 100 * kUs, 2);
	CHECK(rig.pass().open == set_of({2, 3}));

	Rig other(config_with(), 2);
	other.planner.set_upcall_vcpu(7);  // not a vCPU of this VM
	other.next(kStart + 100 * kUs, 9);
	CHECK_FALSE(other.pass().open.any());  // no valid vCPU at all
}

TEST_CASE("window: policy off never opens", "[window]")
{
	WindowConfig config = config_with();
	config.policy = WindowConfig::Policy::Off;
	Rig rig(config);
	rig.next(kStart);
	CHECK_FALSE(rig.pass().any());
	CHECK_FALSE(rig.planner.next_wakeup(rig.inputs).has_value());
}

TEST_CASE("window: a learned lead covers recent wake-up lateness, then decays", "[window]")
{
	WindowConfig config = config_with();
	config.lead_ns.reset();
	WindowPlanner planner(config, 1, kStart);
	CHECK(planner.lead_ns() == WindowPlanner::kMinLeadNs + WindowPlanner::kLeadMarginNs);
	planner.record_wake_lateness(800 * kUs);
	CHECK(planner.lead_ns() == 800 * kUs + WindowPlanner::kLeadMarginNs);
	for (int i = 0; i < 300; ++i)
		planner.record_wake_lateness(0);
	CHECK(planner.lead_ns() < WindowPlanner::kLeadMarginNs + 100);
	// Never more than half the period or the timeout.
	planner.record_wake_lateness(50 * kMs);
	CHECK(planner.lead_ns() == 2 * kMs);
}

TEST_CASE("advance: learns the delivery latency, ignores outliers, stays bounded", "[window]")
{
	AdvanceEstimator learned(std::nullopt);
	CHECK(learned.advance_ns() == 0);
	for (int i = 0; i < 200; ++i)
		learned.record_arrival(static_cast<int64_t>(100 * kUs) - static_cast<int64_t>(learned.advance_ns()));
	CHECK(learned.advance_ns() > 99 * kUs);
	CHECK(learned.advance_ns() <= 100 * kUs);
	learned.record_arrival(20 * static_cast<int64_t>(kMs));  // a vCPU that waited for a CPU
	CHECK(learned.advance_ns() <= 100 * kUs);
	for (int i = 0; i < 400; ++i)
		learned.record_arrival(static_cast<int64_t>(AdvanceEstimator::kMaxNs));
	CHECK(learned.advance_ns() == AdvanceEstimator::kMaxNs);
	for (int i = 0; i < 400; ++i)
		learned.record_arrival(-static_cast<int64_t>(AdvanceEstimator::kMaxNs));
	CHECK(learned.advance_ns() == 0);

	AdvanceEstimator fixed(40 * kUs);
	fixed.record_arrival(300 * kUs);
	CHECK(fixed.advance_ns() == 40 * kUs);
	CHECK(AdvanceEstimator(10 * kMs).advance_ns() == AdvanceEstimator::kMaxNs);
}

TEST_CASE("cpu budget: refills at runtime/period, banks at most one runtime", "[window]")
{
	CpuBudget budget(1 * kMs, 10 * kMs, kStart);
	CHECK(budget.tokens_ns() == static_cast<int64_t>(1 * kMs));
	budget.charge(3 * kMs);
	CHECK_FALSE(budget.available());
	CHECK(budget.available_at(kStart) > kStart + 20 * kMs);
	CHECK(budget.available_at(kStart) <= kStart + 20 * kMs + 20);
	budget.refill(kStart + 20 * kMs);
	CHECK(budget.tokens_ns() == 0);
	CHECK_FALSE(budget.available());
	budget.refill(kStart + 1000 * kMs);
	CHECK(budget.tokens_ns() == static_cast<int64_t>(1 * kMs));
	budget.charge(UINT64_MAX);  // does not wrap into credit
	CHECK(budget.tokens_ns() < 0);
}

TEST_CASE("window policy names parse and print", "[window]")
{
	CHECK(parse_window_policy("deadline").value() == WindowConfig::Policy::Deadline);
	CHECK(parse_window_policy("fifo").value() == WindowConfig::Policy::Fifo);
	CHECK(parse_window_policy("off").value() == WindowConfig::Policy::Off);
	CHECK_FALSE(parse_window_policy("rt").ok());
	CHECK(to_string(WindowConfig::Policy::Deadline) == "deadline");
}
