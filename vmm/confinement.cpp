#include "vmm/confinement.h"

#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
// linux/vhost.h pulls in virtio_ring.h, whose legacy vring_init is C only.
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "base/error.h"

namespace kairos::vmm {
namespace {

// The lists were measured, not guessed: `strace -f -ff` of `kairos run`
// in the emulated KVM machine (2 vCPUs with outsourced timers, priority
// windows and a 100 Hz virtual timer; a panic; a shell with console
// input; SIGTERM), each thread's calls after the point where it is
// confined, then the full guest suite run with the filters on. Everything
// a thread does before that point (thread creation, naming, its priority,
// KVM setup) is not on its list.

// Every kind: glibc and libstdc++ underneath (malloc grows and trims
// arenas with mmap/munmap/mprotect/madvise/brk, and a thread may free a
// block of the main arena; locks and joins are futexes; an exiting thread
// frees its stack with madvise and ends with exit), the vDSO's fallbacks
// and the CPU-time clocks (clock_gettime, clock_getres, gettimeofday),
// the /proc reads of TimeService and of the threads' final accounts
// (openat/read/close, openat read-only: base/seccomp.h; the CMOS RTC's first localtime_r also stats and
// seeks /etc/localtime: newfstatat, lseek, and fstat for older glibc),
// eventfd and console writes, the stop signals' mask, the kick handler's
// return, and the SIGSYS reporter's own write and exit_group.
#define KAIROS_COMMON_SYSCALLS                                                                                     \
	"read", "write", "close", "openat", "newfstatat", "fstat", "lseek", "futex", "mmap", "munmap", "mprotect", \
		"madvise", "brk", "rt_sigprocmask", "rt_sigreturn", "restart_syscall", "clock_gettime",            \
		"clock_getres", "gettimeofday", "getpid", "gettid", "exit", "exit_group"

// Both lists side by side, at compile time: what allowed_ioctls() reports
// is then exactly what the per-fd filters below are built from.
template <typename T, size_t First, size_t Second>
constexpr std::array<T, First + Second> joined(const std::array<T, First> &first, const std::array<T, Second> &second)
{
	std::array<T, First + Second> both{};
	for (size_t i = 0; i < First; ++i)
		both[i] = first[i];
	for (size_t i = 0; i < Second; ++i)
		both[First + i] = second[i];
	return both;
}

// The event loop: io_uring waits (signalfd, stdin, eventfds, timerfds),
// KVM_IRQ_LINE for console input and the RTC's timed interrupts, and the
// terminal's restore (ioctl), timerfd_settime (the panic grace, the RTC's
// next wake-up), tgkill to kick vCPUs at the stop, the --stats file
// (getrusage, writev), the --events file (write), and the console's output
// (vmm/console_sink.h): poll for a sink that would block (the stop's
// bounded drain, the fallback's zero-timeout check) and sendmsg for a
// socket. The control socket (--api-sock, vmm/control_socket.h), made
// during setup: accept4 for its clients (read, write and close are
// common), and unlinkat to remove its file at the stop. Its setup calls
// (thread creation, the vCPU threads' scheduler reads, the 1 ms waits for
// their ids) come before it confines itself.
constexpr auto kMainSyscalls =
	std::to_array<const char *>({KAIROS_COMMON_SYSCALLS, "io_uring_enter", "ioctl", "timerfd_settime", "tgkill",
				     "getrusage", "writev", "poll", "ppoll", "sendmsg", "accept4", "unlinkat"});

// And of ioctl, only these (read from the code, vmm/ and devices/, every
// ioctl a confined main thread can reach): KVM_IRQ_LINE on the VM's fd for
// console input, the RTC's timed interrupts, the power button (`kairos
// ctl shutdown`) and the event-channel upcall (virtual timer, console
// event, `kairos ctl raise-event`); on any fd, tcsetattr's TCSETS for the
// terminal's restore at the stop and TCGETS for isatty and tcgetattr
// (glibc's stdio asks it of stdout before its first buffered write). No other KVM ioctl: the VM's
// ioeventfds are never deassigned (VmFd has no call to do so;
// their fds close with the process), its vCPUs set their own registers,
// and vhost stops on its device's thread.
constexpr auto kVmIoctls = std::to_array<unsigned long>({KVM_IRQ_LINE});
constexpr auto kTerminalIoctls = std::to_array<unsigned long>({TCSETS, TCGETS});
constexpr auto kMainIoctls = joined(kVmIoctls, kTerminalIoctls);

// A vCPU thread: KVM_RUN and the KVM ioctls of its exits (KVM_IRQ_LINE
// for the UART and RTC), timerfd_settime for the panic notice (kairos.ko's
// panic command) and the RTC's next wake-up (a register access moves it).
// No sched_setattr: the ring's (un)registration, a Kairos-device command
// on this thread, has the timer thread probe or close the priority windows
// (TimerService::run_scheduler_requests), so a thread the guest takes over
// through its exits cannot raise itself or any other thread.
constexpr auto kVcpuSyscalls = std::to_array<const char *>({KAIROS_COMMON_SYSCALLS, "ioctl", "timerfd_settime"});

// And of ioctl, only what a vCPU thread asks of KVM (read from the code:
// vmm/vcpu.cpp and the devices' KvmIrqLine): on its own vCPU's fd, KVM_RUN
// and, when the guest stops for a triple fault or a KVM error,
// KVM_GET_REGS, KVM_GET_SREGS and KVM_TRANSLATE for the report of its state
// (Vcpu::report_state); on the VM's fd, KVM_IRQ_LINE for the UART, RTC and
// i8042 on its exits, for the event-channel upcall the guest's
// registration replays or its debug port raises, and for a virtio device's
// interrupt (its transport's registers). No other VM or vCPU ioctl (no
// memory slots, irqfds, new vCPUs or register writes), and none on another
// vCPU's fd: a thread taken over through its guest's exits cannot run or
// read another vCPU.
constexpr auto kOwnVcpuIoctls = std::to_array<unsigned long>({KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE});
constexpr auto kVcpuIoctls = joined(kOwnVcpuIoctls, kVmIoctls);

// The timer thread: its io_uring, its timerfd, KVM_IRQ_LINE on the VM's fd
// for an expiry's upcall (vmm/paravirt.cpp pulse_upcall says why not an
// irqfd), and sched_setattr to open and close priority windows on vCPU
// threads (DEADLINE, or FIFO as the fallback), on those threads only
// (build_timer_filter). Its own priority (setpriority, sched_setscheduler)
// is set before it confines itself.
constexpr auto kTimerSyscalls = std::to_array<const char *>(
	{KAIROS_COMMON_SYSCALLS, "io_uring_enter", "ioctl", "timerfd_settime", "sched_setattr"});

// A virtio device's thread (devices/virtio): its io_uring does the
// image's reads, writes and fdatasyncs (no pread/pwrite/fdatasync calls of
// its own) and waits on the queue notification eventfds, which it reads
// (common read); it raises its interrupt with KVM_IRQ_LINE on the VM's
// fd (vmm/virtio_devices.h says why not an irqfd). Measured as above on
// the guest test `disk` (strace -f -ff of a root and a read-only drive, 64
// MiB written and synced): after its seccomp call, io_uring_enter, read,
// write, futex, madvise, rt_sigprocmask and exit, then the test run with
// the filter on.
// A virtio-net thread (devices/virtio/net.cpp) waits on its io_uring's
// polls of its eventfds and the TAP, reads a frame (common read) and writes
// one from the guest's buffers with writev; its one ioctl is TUNSETOFFLOAD,
// after the driver's features are known. Measured with strace -f on the
// unit tests' socketpair device and on the guest test `network` (its TAP).
constexpr auto kDeviceSyscalls =
	std::to_array<const char *>({KAIROS_COMMON_SYSCALLS, "io_uring_enter", "writev", "ioctl"});

// And of ioctl: the TAP's offloads (virtio-net), and what virtio-vsock's
// thread asks of /dev/vhost-vsock when the guest starts or resets the
// device (devices/virtio/vsock.cpp; its open, VHOST_SET_OWNER,
// VHOST_GET_FEATURES and the cid come before the thread confines itself).
// Measured with strace on the guest tests `network` and `vsock`. On any fd:
// only a TAP and /dev/vhost-vsock understand these requests (KVM's are of
// another ioctl type). And KVM_IRQ_LINE, on the VM's fd only, for the
// device's interrupt.
constexpr auto kTapVhostIoctls = std::to_array<unsigned long>(
	{TUNSETOFFLOAD, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE,
	 VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL, VHOST_VSOCK_SET_RUNNING});
constexpr auto kDeviceIoctls = joined(kTapVhostIoctls, kVmIoctls);

#undef KAIROS_COMMON_SYSCALLS

const char *kind_name(ThreadKind kind)
{
	switch (kind) {
	case ThreadKind::Main:
		return "loop";
	case ThreadKind::Vcpu:
		return "vcpu";
	case ThreadKind::Timer:
		return "timer";
	case ThreadKind::Device:
		return "device";
	}
	return "?";
}

// The "FDSize:" field of /proc/self/status, or 0.
size_t descriptor_table_size()
{
	std::ifstream in("/proc/self/status");
	// A leading newline, so the field matches on the first line too;
	// streamed, as in seccomp_mode_of_this_process (GCC 12's -Wrestrict).
	std::ostringstream text;
	text << '\n' << in.rdbuf();
	std::string status = text.str();
	constexpr std::string_view kField = "\nFDSize:";
	size_t at = status.find(kField);
	if (at == std::string::npos)
		return 0;
	size_t begin = status.find_first_not_of(" \t", at + kField.size());
	size_t size = 0;
	if (begin != std::string::npos)
		std::from_chars(status.data() + begin, status.data() + status.size(), size);
	return size;
}

}  // namespace

CapabilitySet capabilities_needed(const Config &config)
{
	// The timer service exists only with outsourcing on; its priority and
	// the windows it opens are the only raised scheduling Kairos does.
	const Config::Outsourcing &outsourcing = config.outsourcing;
	bool raised = outsourcing.priority.policy != kairos::outsourcing::Priority::Policy::Normal ||
		      outsourcing.window.policy != kairos::outsourcing::WindowConfig::Policy::Off;
	return outsourcing.enabled && raised ? CapabilitySet::of({CAP_SYS_NICE}) : CapabilitySet{};
}

Result<size_t> count_descriptors_of_device(const std::string &device_path)
{
	struct stat device {};
	if (stat(device_path.c_str(), &device) != 0)
		return errno_error("stat " + device_path);
	if (!S_ISCHR(device.st_mode) && !S_ISBLK(device.st_mode))
		return make_error("{} is not a device", device_path);
	size_t table = descriptor_table_size();
	if (table == 0)
		return make_error("no FDSize in /proc/self/status");
	size_t count = 0;
	for (size_t fd = 0; fd < table; ++fd) {
		struct stat descriptor {};
		if (fstat(static_cast<int>(fd), &descriptor) == 0 &&
		    (descriptor.st_mode & S_IFMT) == (device.st_mode & S_IFMT) && descriptor.st_rdev == device.st_rdev)
			++count;
	}
	return count;
}

std::span<const char *const> allowed_syscalls(ThreadKind kind)
{
	switch (kind) {
	case ThreadKind::Main:
		return kMainSyscalls;
	case ThreadKind::Vcpu:
		return kVcpuSyscalls;
	case ThreadKind::Timer:
		return kTimerSyscalls;
	case ThreadKind::Device:
		return kDeviceSyscalls;
	}
	return {};
}

std::span<const unsigned long> allowed_ioctls(ThreadKind kind)
{
	switch (kind) {
	case ThreadKind::Vcpu:
		return kVcpuIoctls;
	case ThreadKind::Device:
		return kDeviceIoctls;
	case ThreadKind::Main:
		return kMainIoctls;
	case ThreadKind::Timer:
		return kVmIoctls;
	}
	return {};
}

Result<std::optional<TestViolation>> parse_test_violation(const char *value)
{
	if (!value || !*value)
		return std::optional<TestViolation>();
	if (std::string(value) == "vcpu-ioctl")
		return std::optional<TestViolation>(TestViolation{ThreadKind::Vcpu, true});
	for (ThreadKind kind : {ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Timer, ThreadKind::Device})
		if (std::string(value) == kind_name(kind))
			return std::optional<TestViolation>(TestViolation{kind});
	return make_error("{} (test only): must be vcpu, vcpu-ioctl, timer, loop or device, got '{}'",
			  kTestViolationVariable, value);
}

Result<SeccompFilter> build_timer_filter(int vm, std::span<const uint32_t> vcpu_threads)
{
	// With CAP_SYS_NICE (windows on), sched_setattr could set any thread of
	// any user real-time, or idle: the timer thread, which reads the
	// guest's ring, may aim it at the vCPU threads it raises and lowers.
	const FirstArgumentAllowance targets[] = {{"sched_setattr", vcpu_threads}};
	const IoctlAllowance ioctls[] = {{kVmIoctls, std::span<const int>(&vm, 1)}};
	return SeccompFilter::allow_only(kTimerSyscalls, ioctls, targets);
}

Result<SeccompFilter> build_filter(ThreadKind kind, const KvmDescriptors &kvm, size_t vcpu)
{
	std::span<const int> vm(&kvm.vm, 1);
	switch (kind) {
	case ThreadKind::Main: {
		const IoctlAllowance ioctls[] = {{kVmIoctls, vm}, {kTerminalIoctls, {}}};
		// Its tgkill kicks this process's vCPU threads (pthread_kill),
		// never another process's.
		const uint32_t self[] = {static_cast<uint32_t>(getpid())};
		const FirstArgumentAllowance own_process[] = {{"tgkill", self}};
		return SeccompFilter::allow_only(kMainSyscalls, ioctls, own_process);
	}
	case ThreadKind::Vcpu: {
		if (vcpu >= kvm.vcpus.size())
			return make_error("seccomp: no fd for vCPU {} ({} known)", vcpu, kvm.vcpus.size());
		const IoctlAllowance ioctls[] = {{kOwnVcpuIoctls, std::span<const int>(&kvm.vcpus[vcpu], 1)},
						 {kVmIoctls, vm}};
		return SeccompFilter::allow_only(kVcpuSyscalls, ioctls);
	}
	case ThreadKind::Timer:
		return build_timer_filter(kvm.vm, {});
	case ThreadKind::Device: {
		const IoctlAllowance ioctls[] = {{kTapVhostIoctls, {}}, {kVmIoctls, vm}};
		return SeccompFilter::allow_only(kDeviceSyscalls, ioctls);
	}
	}
	return make_error("seccomp: unknown thread kind");
}

Result<Confinement> Confinement::prepare(const Config &config, const KvmDescriptors &kvm)
{
	Confinement confinement;
	// Whatever security.seccomp says: Kairos never executes a program, and
	// with no_new_privs nothing it could be made to execute gains rights.
	KAIROS_TRY(set_no_new_privs());
	confinement.needed_ = capabilities_needed(config);
	KAIROS_TRY_ASSIGN(dropped, drop_capabilities_except(confinement.needed_));
	confinement.capabilities_ = dropped;
	if (!config.security.seccomp)
		return confinement;
	KAIROS_TRY_ASSIGN(test_violation, parse_test_violation(std::getenv(kTestViolationVariable)));
	confinement.test_violation_ = test_violation;
	KAIROS_TRY_ASSIGN(main, build_filter(ThreadKind::Main, kvm));
	KAIROS_TRY_ASSIGN(device, build_filter(ThreadKind::Device, kvm));
	for (size_t vcpu = 0; vcpu < kvm.vcpus.size(); ++vcpu) {
		KAIROS_TRY_ASSIGN(filter, build_filter(ThreadKind::Vcpu, kvm, vcpu));
		confinement.vcpus_.push_back(std::move(filter));
	}
	confinement.main_ = std::move(main);
	confinement.vm_ = kvm.vm;
	confinement.device_ = std::move(device);
	KAIROS_TRY(install_seccomp_violation_reporter(kExitForbiddenSyscall));
	return confinement;
}

Status Confinement::enter(ThreadKind kind, std::string_view label) const
{
	if (kind == ThreadKind::Vcpu)
		return make_error("confinement: a vCPU thread enters with its index (enter_vcpu)");
	if (kind == ThreadKind::Timer)
		return make_error("confinement: the timer thread enters with the vCPU threads (enter_timer)");
	return install(kind == ThreadKind::Main ? main_ : device_, kind, label);
}

Status Confinement::enter_timer(std::span<const uint32_t> vcpu_threads, std::string_view label) const
{
	if (!main_)
		return {};  // security.seccomp off
	// Compiled here, on the timer thread before it is confined: only now
	// are the vCPU threads' ids known.
	KAIROS_TRY_ASSIGN(filter, build_timer_filter(vm_, vcpu_threads));
	return install(std::optional<SeccompFilter>(std::move(filter)), ThreadKind::Timer, label);
}

Status Confinement::enter_vcpu(size_t index, std::string_view label) const
{
	if (!main_)
		return {};  // security.seccomp off
	if (index >= vcpus_.size())
		return make_error("confinement: no filter for vCPU {} ({} prepared)", index, vcpus_.size());
	return install(vcpus_[index], ThreadKind::Vcpu, label);
}

Status Confinement::install(const std::optional<SeccompFilter> &filter, ThreadKind kind, std::string_view label) const
{
	if (!filter)
		return {};
	KAIROS_TRY(filter->install_on_this_thread(label));
	// Either traps: the reporter ends the process.
	if (test_violation_ && test_violation_->kind == kind && test_violation_->vm_ioctl)
		ioctl(-1, KVM_CREATE_VCPU, 0);
	else if (test_violation_ && test_violation_->kind == kind)
		syscall(SYS_getpgrp);
	return {};
}

}  // namespace kairos::vmm
