#include "outsourcing/window.h"

#include <algorithm>

#include "base/error.h"

namespace kairos::outsourcing {

std::string to_string(WindowConfig::Policy policy)
{
	switch (policy) {
	case WindowConfig::Policy::Off:
		return "off";
	case WindowConfig::Policy::Deadline:
		return "deadline";
	case WindowConfig::Policy::Fifo:
		return "fifo";
	}
	return "?";
}

Result<WindowConfig::Policy> parse_window_policy(const std::string &text)
{
	if (text == "deadline")
		return WindowConfig::Policy::Deadline;
	if (text == "fifo")
		return WindowConfig::Policy::Fifo;
	if (text == "off")
		return WindowConfig::Policy::Off;
	return make_error("must be \"deadline\", \"fifo\" or \"off\", got \"{}\"", text);
}

void DecayingMax::record(uint64_t sample)
{
	value_ = std::max(sample, value_ - value_ / 16);
}

AdvanceEstimator::AdvanceEstimator(std::optional<uint64_t> fixed)
	: learned_(!fixed), advance_ns_(std::min<uint64_t>(fixed.value_or(0), kMaxNs))
{
}

void AdvanceEstimator::record_arrival(int64_t arrival_ns)
{
	constexpr int64_t kMax = static_cast<int64_t>(kMaxNs);
	if (!learned_ || arrival_ns > kMax || arrival_ns < -kMax)
		return;
	int64_t next = static_cast<int64_t>(advance_ns_) + arrival_ns / 8;
	advance_ns_ = static_cast<uint64_t>(std::clamp<int64_t>(next, 0, kMax));
}

CpuBudget::CpuBudget(uint64_t runtime_ns, uint64_t period_ns, uint64_t now_ns)
	: runtime_ns_(runtime_ns), period_ns_(std::max<uint64_t>(period_ns, 1)),
	  tokens_ns_(static_cast<int64_t>(runtime_ns)), refilled_at_ns_(now_ns)
{
}

void CpuBudget::refill(uint64_t now_ns)
{
	if (now_ns <= refilled_at_ns_)
		return;
	unsigned __int128 earned = static_cast<unsigned __int128>(now_ns - refilled_at_ns_) * runtime_ns_ / period_ns_;
	refilled_at_ns_ = now_ns;
	__int128 refilled = static_cast<__int128>(tokens_ns_) + static_cast<__int128>(earned);
	tokens_ns_ = static_cast<int64_t>(std::min<__int128>(refilled, static_cast<__int128>(runtime_ns_)));
}

void CpuBudget::charge(uint64_t cpu_ns)
{
	// A charge beyond what can be repaid in a few periods would only
	// make the arithmetic wrap; the bucket is empty either way.
	uint64_t bounded = std::min<uint64_t>(cpu_ns, uint64_t{1} << 40);
	tokens_ns_ -= static_cast<int64_t>(bounded);
}

uint64_t CpuBudget::available_at(uint64_t now_ns) const
{
	if (tokens_ns_ > 0 || runtime_ns_ == 0)
		return runtime_ns_ == 0 ? UINT64_MAX : now_ns;
	unsigned __int128 wait = (static_cast<unsigned __int128>(-tokens_ns_) + 1) * period_ns_ / runtime_ns_ + 1;
	return now_ns + static_cast<uint64_t>(wait);
}

WindowPlanner::WindowPlanner(WindowConfig config, uint32_t vcpu_count, uint64_t now_ns)
	: config_(config), vcpu_count_(std::min<uint32_t>(vcpu_count, KAIROS_MAX_VCPUS)), wake_lateness_(kMinLeadNs),
	  cpu_at_(vcpu_count_, 0)
{
	for (uint32_t vcpu = 0; vcpu < vcpu_count_; ++vcpu)
		budgets_.emplace_back(bucket_ns(), config_.period_ns, now_ns);
}

uint64_t WindowPlanner::bucket_ns() const
{
	// Under SCHED_DEADLINE the bucket is 3/4 of the kernel's reservation,
	// charged often enough (next_wakeup) that Kairos ends a greedy window
	// before the kernel's CBS would throttle the vCPU: a throttled vCPU
	// does not run at all until its next period, which is worse than no
	// window. A FIFO window has no CBS behind it; the bucket is its only
	// bound, and the share the configuration names.
	if (config_.policy == WindowConfig::Policy::Fifo)
		return config_.runtime_ns;
	return config_.runtime_ns * kBucketShareNumerator / kBucketShareDenominator;
}

uint64_t WindowPlanner::charge_margin_ns() const
{
	// Half the gap between the bucket and the kernel's runtime: a charge
	// that late is still before the CBS throttles. FIFO has no such gap.
	return (config_.runtime_ns - bucket_ns()) / 2;
}

uint64_t WindowPlanner::lead_ns() const
{
	if (config_.lead_ns)
		return *config_.lead_ns;
	uint64_t ceiling = std::max(kMinLeadNs, std::min(config_.timeout_ns, config_.period_ns / 2));
	return std::clamp(wake_lateness_.value() + kLeadMarginNs, kMinLeadNs, ceiling);
}

uint32_t WindowPlanner::owed(const WindowInputs &inputs)
{
	uint32_t done = inputs.work_done + done_offset_;
	if (static_cast<int32_t>(inputs.delivered - done) < 0) {
		// The guest claims more than it was given (late reports of
		// forgiven work, or nonsense): believe nothing is owed.
		done_offset_ = inputs.delivered - inputs.work_done;
		return 0;
	}
	return inputs.delivered - done;
}

VcpuSet WindowPlanner::valid_vcpus() const
{
	VcpuSet vcpus;
	for (uint32_t vcpu = 0; vcpu < vcpu_count_; ++vcpu)
		vcpus.set(vcpu);
	return vcpus;
}

VcpuSet WindowPlanner::wanted_vcpus(uint16_t named) const
{
	VcpuSet vcpus;
	if (upcall_vcpu_ < vcpu_count_)
		vcpus.set(upcall_vcpu_);
	if (named < vcpu_count_)
		vcpus.set(named);
	return vcpus;
}

WindowActions WindowPlanner::update(const WindowInputs &inputs, const CpuTime &cpu_time)
{
	WindowActions actions;
	if (config_.policy == WindowConfig::Policy::Off)
		return actions;
	uint64_t now = inputs.now_ns;
	for (auto &budget : budgets_)
		budget.refill(now);
	uint32_t owing = owed(inputs);
	uint64_t lead = lead_ns();
	bool due_soon = inputs.next_fire_ns && *inputs.next_fire_ns <= now + lead;

	if (!is_open()) {
		if ((due_soon || owing > 0) && now >= retry_at_ns_)
			open_window(inputs, cpu_time, actions);
		return actions;
	}

	charge(now, cpu_time, actions);
	if (!is_open())
		return actions;  // every covered vCPU ran out of budget
	VcpuSet more = inputs.fired_vcpus & valid_vcpus();
	if (due_soon) {
		cover_until_ns_ = std::max(cover_until_ns_, *inputs.next_fire_ns);
		more |= wanted_vcpus(inputs.next_vcpu);
	}
	if ((more & ~covered_).any())
		add_vcpus(more, cpu_time, actions);
	// Deadlines close together share one window: closing and opening
	// again a moment later would cost two system calls and buy nothing.
	bool next_close_by = inputs.next_fire_ns && *inputs.next_fire_ns <= now + 2 * lead;
	if (owing == 0 && !next_close_by) {
		// Done, and nothing due soon. But the task a window just woke
		// often arms the next deadline itself (a periodic sleeper), a
		// moment after it reported: closing at once would leave it to
		// queue behind the host's load before it can, and a fixed grid
		// of deadlines then starts late. Wait one lead for that request,
		// but never past the timeout, which bounds every window (and
		// next_wakeup's times stay ahead of an open window's now).
		if (!quiet_since_ns_)
			quiet_since_ns_ = now;
		if (now >= *quiet_since_ns_ + lead || now >= timeout_at_ns())
			close_window(now, CloseReason::Guest, cpu_time, actions);
		return actions;
	}
	quiet_since_ns_.reset();
	if (now >= timeout_at_ns()) {
		// Forgive what the guest owes, or every later window would
		// wait for it too and end only by timeout.
		done_offset_ += owing;
		close_window(now, CloseReason::Timeout, cpu_time, actions);
	}
	return actions;
}

void WindowPlanner::open_window(const WindowInputs &inputs, const CpuTime &cpu_time, WindowActions &actions)
{
	bool due = inputs.next_fire_ns.has_value();
	VcpuSet wanted = wanted_vcpus(due ? inputs.next_vcpu : KAIROS_VCPU_ANY) | (inputs.fired_vcpus & valid_vcpus());
	opened_at_ns_ = inputs.now_ns;
	quiet_since_ns_.reset();
	cover_until_ns_ = due ? std::max(*inputs.next_fire_ns, inputs.now_ns) : inputs.now_ns;
	add_vcpus(wanted, cpu_time, actions);
	if (is_open())
		++stats_.opened;
}

void WindowPlanner::add_vcpus(VcpuSet vcpus, const CpuTime &cpu_time, WindowActions &actions)
{
	vcpus &= ~covered_;
	bool refused = false;
	uint64_t retry_at = UINT64_MAX;
	for (uint32_t vcpu = 0; vcpu < vcpu_count_; ++vcpu) {
		if (!vcpus.test(vcpu))
			continue;
		if (!budgets_[vcpu].available()) {
			refused = true;
			retry_at = std::min(retry_at, budgets_[vcpu].available_at(opened_at_ns_));
			continue;
		}
		cpu_at_[vcpu] = cpu_time(vcpu);
		covered_.set(vcpu);
		actions.open.set(vcpu);
		actions.close.reset(vcpu);
	}
	if (refused) {
		if (!exhausted_)
			++stats_.budget_exhausted;
		exhausted_ = true;
		if (!is_open())
			retry_at_ns_ = retry_at;
	} else if (vcpus.any()) {
		exhausted_ = false;
	}
}

void WindowPlanner::charge(uint64_t now_ns, const CpuTime &cpu_time, WindowActions &actions)
{
	for (uint32_t vcpu = 0; vcpu < vcpu_count_; ++vcpu) {
		if (!covered_.test(vcpu))
			continue;
		uint64_t now_cpu = cpu_time(vcpu);
		uint64_t used = now_cpu > cpu_at_[vcpu] ? now_cpu - cpu_at_[vcpu] : 0;
		cpu_at_[vcpu] = now_cpu;
		budgets_[vcpu].charge(used);
		stats_.cpu_ns += used;
		if (budgets_[vcpu].available())
			continue;
		covered_.reset(vcpu);
		actions.close.set(vcpu);
		actions.open.reset(vcpu);
		if (!exhausted_)
			++stats_.budget_exhausted;
		exhausted_ = true;
		retry_at_ns_ = std::max(retry_at_ns_, budgets_[vcpu].available_at(now_ns));
	}
	if (!is_open() && actions.close.any()) {
		quiet_since_ns_.reset();
		stats_.open_ns += now_ns - std::min(now_ns, opened_at_ns_);
		++stats_.closed_by_budget;
	}
}

void WindowPlanner::close_window(uint64_t now_ns, CloseReason reason, const CpuTime &cpu_time, WindowActions &actions)
{
	charge(now_ns, cpu_time, actions);
	if (!is_open())
		return;  // the charge emptied it; counted there
	quiet_since_ns_.reset();
	actions.close |= covered_;
	actions.open &= ~covered_;
	covered_.reset();
	stats_.open_ns += now_ns - std::min(now_ns, opened_at_ns_);
	switch (reason) {
	case CloseReason::Guest:
		++stats_.closed_by_guest;
		break;
	case CloseReason::Timeout:
		++stats_.closed_by_timeout;
		break;
	case CloseReason::Detach:
		++stats_.closed_by_detach;
		break;
	}
}

WindowActions WindowPlanner::close_all(uint64_t now_ns, const CpuTime &cpu_time)
{
	WindowActions actions;
	if (is_open())
		close_window(now_ns, CloseReason::Detach, cpu_time, actions);
	done_offset_ = 0;
	return actions;
}

std::optional<uint64_t> WindowPlanner::next_wakeup(const WindowInputs &inputs) const
{
	if (config_.policy == WindowConfig::Policy::Off)
		return std::nullopt;
	uint64_t lead = lead_ns();
	std::optional<uint64_t> open_at;
	if (inputs.next_fire_ns)
		open_at = *inputs.next_fire_ns > lead ? *inputs.next_fire_ns - lead : 0;
	if (is_open()) {
		uint64_t wakeup = timeout_at_ns();
		if (open_at && *open_at > inputs.now_ns)
			wakeup = std::min(wakeup, *open_at);
		if (quiet_since_ns_)
			wakeup = std::min(wakeup, *quiet_since_ns_ + lead);
		// When the fastest-spending vCPU could have emptied its bucket.
		for (uint32_t vcpu = 0; vcpu < vcpu_count_; ++vcpu) {
			if (!covered_.test(vcpu))
				continue;
			int64_t tokens = budgets_[vcpu].tokens_ns();
			uint64_t runway = (tokens > 0 ? static_cast<uint64_t>(tokens) : 0) + charge_margin_ns();
			runway = std::max(runway, kMinChargeIntervalNs);
			wakeup = std::min(wakeup, inputs.now_ns + runway);
		}
		return wakeup;
	}
	bool owing = static_cast<int32_t>(inputs.delivered - (inputs.work_done + done_offset_)) > 0;
	if (owing)
		open_at = open_at ? std::min(*open_at, inputs.now_ns) : inputs.now_ns;
	if (!open_at)
		return std::nullopt;
	return std::max(*open_at, retry_at_ns_);
}

WindowStats WindowPlanner::stats() const
{
	WindowStats stats = stats_;
	stats.lead_ns = lead_ns();
	return stats;
}

}  // namespace kairos::outsourcing
