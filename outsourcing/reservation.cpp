#include "outsourcing/reservation.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/clock.h"
#include "base/error.h"

namespace kairos::outsourcing {
namespace {

// struct sched_attr, SCHED_ATTR_SIZE_VER0 (sched_setattr(2)). Declared
// here because <linux/sched/types.h> clashes with glibc's struct sched_param.
struct SchedAttr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};
static_assert(sizeof(SchedAttr) == 48, "SCHED_ATTR_SIZE_VER0");

constexpr uint32_t kSchedDeadline = 6;  // SCHED_DEADLINE, <linux/sched.h>

int sched_setattr(uint64_t tid, const SchedAttr &attr)
{
	return static_cast<int>(syscall(SYS_sched_setattr, static_cast<pid_t>(tid), &attr, 0U));
}

std::string errno_text(int error)
{
	return std::strerror(error);
}

}  // namespace

ThreadReservations::ThreadReservations(std::vector<VcpuThread> threads, const WindowConfig &config)
	: threads_(std::move(threads)), original_(threads_.size()), config_(config), policy_(config.policy)
{
	for (size_t i = 0; i < threads_.size(); ++i) {
		pid_t tid = static_cast<pid_t>(threads_[i].tid);
		int policy = sched_getscheduler(tid);
		original_[i].policy = policy < 0 ? SCHED_OTHER : policy;
		errno = 0;
		int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
		original_[i].nice = errno ? 0 : nice;
		sched_param param{};
		original_[i].priority = sched_getparam(tid, &param) == 0 ? param.sched_priority : 0;
	}
}

Status ThreadReservations::apply(uint32_t vcpu, WindowConfig::Policy policy)
{
	SchedAttr attr{};
	attr.size = sizeof(attr);
	if (policy == WindowConfig::Policy::Deadline) {
		attr.sched_policy = kSchedDeadline;
		attr.sched_runtime = config_.runtime_ns;
		attr.sched_deadline = config_.period_ns;
		attr.sched_period = config_.period_ns;
	} else {
		attr.sched_policy = SCHED_FIFO;
		attr.sched_priority = static_cast<uint32_t>(config_.fifo_priority);
	}
	if (sched_setattr(threads_[vcpu].tid, attr) != 0)
		return errno_error(fmt::format("sched_setattr({}) of vCPU {} (thread {})", to_string(policy), vcpu,
					       threads_[vcpu].tid));
	return {};
}

Result<bool> ThreadReservations::raise(uint32_t vcpu)
{
	if (vcpu >= threads_.size())
		return make_error("no vCPU {}", vcpu);
	Status applied = apply(vcpu, policy_);
	int deadline_errno = errno;
	if (applied) {
		busy_in_a_row_ = 0;
		raised_once_ = true;
		return true;
	}
	if (policy_ != WindowConfig::Policy::Deadline)
		return applied.error();
	// One refusal is one window without; many in a row mean the kernel
	// will not admit this reservation (measured: Debian's 6.1 in the
	// emulated test machine refused most 80% windows), so fall back.
	// The first raise is the start-up probe: a kernel that admits
	// nothing now is not going to admit the windows either.
	if (deadline_errno == EBUSY && raised_once_ && ++busy_in_a_row_ < kMaxBusyInARow)
		return false;
	// EPERM here may also mean "affinity narrower than the root domain"
	// (sched-deadline.rst 5): FIFO has no such rule, so try it.
	Status fifo = apply(vcpu, WindowConfig::Policy::Fifo);
	if (!fifo)
		return applied.error();
	policy_ = WindowConfig::Policy::Fifo;
	raised_once_ = true;
	note_ = fmt::format("outsourcing.window: SCHED_DEADLINE refused ({}); using SCHED_FIFO {} "
			    "windows, bounded by Kairos's timeout and budget only",
			    errno_text(deadline_errno), config_.fifo_priority);
	return true;
}

Status ThreadReservations::lower(uint32_t vcpu)
{
	if (vcpu >= threads_.size())
		return make_error("no vCPU {}", vcpu);
	SchedAttr attr{};
	attr.size = sizeof(attr);
	attr.sched_policy = static_cast<uint32_t>(original_[vcpu].policy);
	attr.sched_nice = original_[vcpu].nice;
	attr.sched_priority = static_cast<uint32_t>(original_[vcpu].priority);
	if (sched_setattr(threads_[vcpu].tid, attr) != 0)
		return errno_error(
			fmt::format("sched_setattr(normal) of vCPU {} (thread {})", vcpu, threads_[vcpu].tid));
	return {};
}

uint64_t ThreadReservations::cpu_time_ns(uint32_t vcpu) const
{
	return vcpu < threads_.size() ? clock_now_ns(threads_[vcpu].cpu_clock) : 0;
}

std::string ThreadReservations::take_note()
{
	return std::exchange(note_, {});
}

}  // namespace kairos::outsourcing
