// The parts of confinement that need no filter installed: the name table
// and report line the SIGSYS handler uses, the allow-lists, the /proc
// field --stats reports and the test-only trigger.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "base/seccomp.h"
#include "child_process.h"
#include "vmm/confinement.h"

using kairos::vmm::ThreadKind;

// In a child: installs `filter` on this thread the way a confined thread
// does (no_new_privs, the SIGSYS reporter, the filter), or exits 100.
void confine_or_exit(const kairos::Result<kairos::SeccompFilter> &filter, const char *label)
{
	if (!filter.ok() || !kairos::set_no_new_privs().ok() ||
	    !kairos::install_seccomp_violation_reporter(kairos::vmm::kExitForbiddenSyscall).ok() ||
	    !filter->install_on_this_thread(label).ok())
		_exit(100);
}

TEST_CASE("seccomp: system call numbers have their names for the report", "[seccomp]")
{
	kairos::load_syscall_names();
	CHECK(std::string(kairos::syscall_name(SYS_read)) == "read");
	CHECK(std::string(kairos::syscall_name(SYS_getpgrp)) == "getpgrp");
	CHECK(std::string(kairos::syscall_name(SYS_io_uring_enter)) == "io_uring_enter");
	CHECK(std::string(kairos::syscall_name(-1)) == "?");
	CHECK(std::string(kairos::syscall_name(100000)) == "?");
}

TEST_CASE("seccomp: the violation report is one line naming the call and the thread", "[seccomp]")
{
	kairos::load_syscall_names();
	char line[160];
	size_t length = kairos::format_seccomp_violation(line, sizeof line, SYS_getpgrp, "kairos-vcpu0", 4242);
	CHECK(std::string(line, length) ==
	      "kairos: seccomp: forbidden system call 111 (getpgrp) on thread kairos-vcpu0 (tid 4242); stopping\n");
	// Truncated, never overrun.
	char small[20];
	CHECK(kairos::format_seccomp_violation(small, sizeof small, SYS_getpgrp, "kairos-timer", 1) == sizeof small);
}

TEST_CASE("seccomp: every thread kind's list compiles, and none allows the test's call", "[seccomp]")
{
	for (ThreadKind kind : {ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Timer, ThreadKind::Device}) {
		auto list = kairos::vmm::allowed_syscalls(kind);
		auto filter = kairos::SeccompFilter::allow_only(list);
		REQUIRE(filter.ok());
		CHECK(filter->instructions() > list.size());
		CHECK(std::none_of(list.begin(), list.end(), [](const char *name) {
			return std::string(name) == "getpgrp" || std::string(name) == "execve" ||
			       std::string(name) == "clone" || std::string(name) == "clone3";
		}));
	}
	// The timer thread raises the upcall line and nothing else; a device
	// thread's ioctls are the TAP's TUNSETOFFLOAD, vhost's (seccomp
	// filters them) and its interrupt line.
	auto timer_ioctls = kairos::vmm::allowed_ioctls(ThreadKind::Timer);
	CHECK(std::vector<unsigned long>(timer_ioctls.begin(), timer_ioctls.end()) ==
	      std::vector<unsigned long>{KVM_IRQ_LINE});
	auto device_ioctls = kairos::vmm::allowed_ioctls(ThreadKind::Device);
	REQUIRE(device_ioctls.size() == 10);
	CHECK(device_ioctls[0] == TUNSETOFFLOAD);
	for (unsigned long request : device_ioctls.subspan(1, 8))
		CHECK(_IOC_TYPE(request) == 0xAF);  // VHOST_VIRTIO (linux/vhost.h)
	CHECK(device_ioctls[9] == KVM_IRQ_LINE);
}

// docs/SECURITY.md and ARCHITECTURE.md give these counts: change them together.
TEST_CASE("seccomp: each list is as long as docs/SECURITY.md says", "[seccomp]")
{
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Main).size() == 34);
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Vcpu).size() == 25);
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Timer).size() == 27);
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Device).size() == 26);
	// The control socket's: accept, and the removal of its file at the stop.
	auto main = kairos::vmm::allowed_syscalls(ThreadKind::Main);
	for (const char *call : {"accept4", "unlinkat"})
		CHECK(std::find(main.begin(), main.end(), std::string(call)) != main.end());
	// Only the timer thread changes a thread's scheduling (priority windows).
	for (ThreadKind kind : {ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Device}) {
		auto list = kairos::vmm::allowed_syscalls(kind);
		CHECK(std::find(list.begin(), list.end(), std::string("sched_setattr")) == list.end());
	}
	auto timer = kairos::vmm::allowed_syscalls(ThreadKind::Timer);
	CHECK(std::find(timer.begin(), timer.end(), std::string("sched_setattr")) != timer.end());
}

TEST_CASE("seccomp: an unknown system call name is an error, not a silent gap", "[seccomp]")
{
	const char *names[] = {"read", "no_such_call"};
	auto filter = kairos::SeccompFilter::allow_only(names);
	REQUIRE_FALSE(filter.ok());
	CHECK(filter.error().message == "seccomp: no system call named 'no_such_call' on this architecture");
}

TEST_CASE("seccomp: the mode is read from the Seccomp: field of /proc status", "[seccomp]")
{
	CHECK(kairos::seccomp_mode_from_status("Name:\tkairos\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\n") ==
	      2);
	CHECK(kairos::seccomp_mode_from_status("Name:\tkairos\nSeccomp:\t0\n") == 0);
	CHECK(kairos::seccomp_mode_from_status("Name:\tkairos\nSeccomp_filters:\t1\n") == -1);
	// Readable here (0 on a bare host; a container may confine us already).
	CHECK(kairos::seccomp_mode_of_this_process() >= 0);
}

// The real thing in a child process (no KVM needed): the vCPU list
// installed, the mode is 2, and a call off the list is reported in one
// line on stderr and ends the process with the documented code.
TEST_CASE("seccomp: a forbidden call on a confined thread is reported and stops the process", "[seccomp]")
{
	auto child = kairos::test::run_in_child([] {
		auto filter = kairos::SeccompFilter::allow_only(kairos::vmm::allowed_syscalls(ThreadKind::Vcpu));
		confine_or_exit(filter, "test-vcpu");
		if (kairos::seccomp_mode_of_this_process() != 2)
			_exit(101);
		syscall(SYS_getpgrp);
		_exit(102);  // not reached: the handler exits
	});
	CHECK(child.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(child.stderr_text == "kairos: seccomp: forbidden system call 111 (getpgrp) on thread test-vcpu (tid " +
					   std::to_string(child.pid) + "); stopping\n");
}

TEST_CASE("seccomp: a refused ioctl is reported with its request", "[seccomp]")
{
	kairos::load_syscall_names();
	char line[192];
	size_t length = kairos::format_seccomp_violation(line, sizeof line, SYS_ioctl, "kairos-vcpu1", 7,
							 kairos::violation_argument(SYS_ioctl, 0xae41UL, 0));
	CHECK(std::string(line, length) == "kairos: seccomp: forbidden system call 16 (ioctl, request 0xae41) on "
					   "thread kairos-vcpu1 (tid 7); stopping\n");
}

// Every thread kind lists openat for its /proc reads; none may open a file
// to write it, create or truncate one, or reopen a device read-write: the
// call traps and is named with its flags.
TEST_CASE("seccomp: a confined thread opens files read-only, and nothing else", "[seccomp]")
{
	auto child = kairos::test::run_in_child([] {
		auto filter = kairos::SeccompFilter::allow_only(kairos::vmm::allowed_syscalls(ThreadKind::Main));
		confine_or_exit(filter, "test-loop");
		int status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
		if (status < 0)
			_exit(101);
		close(status);
		open("/dev/null", O_WRONLY | O_CLOEXEC);
		_exit(102);  // not reached: the handler exits
	});
	CHECK(child.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(child.stderr_text == fmt::format("kairos: seccomp: forbidden system call {} (openat, flags {:#x}) on "
					       "thread test-loop (tid {}); stopping\n",
					       SYS_openat, O_WRONLY | O_CLOEXEC, child.pid));
	CHECK_FALSE(kairos::violation_argument(SYS_getpgrp, 1, 2).has_value());
}

TEST_CASE("seccomp: ioctl requests need ioctl in the list", "[seccomp]")
{
	const char *names[] = {"read"};
	const unsigned long requests[] = {KVM_RUN};
	const kairos::IoctlAllowance ioctls[] = {{requests, {}}};
	auto filter = kairos::SeccompFilter::allow_only(names, ioctls);
	REQUIRE_FALSE(filter.ok());
	CHECK(filter.error().message == "seccomp: ioctl requests given, but ioctl is not in the list");
}

// Stand-ins for the VM's fd and two vCPUs' (/dev/null: a request the filter
// lets through fails there with ENOTTY, from the kernel), and one more fd
// that is none of them.
struct FakeKvm {
	kairos::vmm::KvmDescriptors kvm;
	int other = -1;
};

FakeKvm open_fake_kvm()
{
	auto open_null = [] { return open("/dev/null", O_RDWR | O_CLOEXEC); };
	FakeKvm fake;
	fake.kvm.vm = open_null();
	fake.kvm.vcpus = {open_null(), open_null()};
	fake.other = open_null();
	return fake;
}

// The request passed the filter: the kernel refused it for /dev/null. Also
// with garbage in the upper halves of fd and request, which the kernel
// ignores (unsigned ints), so the filter must too.
bool passes(int fd, unsigned long request)
{
	if (ioctl(fd, request, 0) != -1 || errno != ENOTTY)
		return false;
	return syscall(SYS_ioctl, (1UL << 32) | static_cast<unsigned>(fd), (1UL << 32) | request, 0) == -1 &&
	       errno == ENOTTY;
}

// Which of a FakeKvm's descriptors an ioctl goes to.
int vm_fd(const FakeKvm &fake)
{
	return fake.kvm.vm;
}
int vcpu0_fd(const FakeKvm &fake)
{
	return fake.kvm.vcpus[0];
}
int other_fd(const FakeKvm &fake)
{
	return fake.other;
}

// In a child, under build_filter(kind, fake, vcpu 1): allowed() must pass,
// then ioctl(fd_of(fake), forbidden) must trap and be named with its
// request.
template <typename Allowed, typename FdOf>
void check_ioctls(ThreadKind kind, const char *thread_name, Allowed allowed, FdOf fd_of, unsigned long forbidden)
{
	auto child = kairos::test::run_in_child([&] {
		FakeKvm fake = open_fake_kvm();
		auto filter = kairos::vmm::build_filter(kind, fake.kvm, 1);
		if (fake.other < 0)
			_exit(100);
		confine_or_exit(filter, thread_name);
		if (!allowed(fake))
			_exit(101);
		ioctl(fd_of(fake), forbidden, 0);
		_exit(102);  // not reached: the handler exits
	});
	CHECK(child.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(child.stderr_text ==
	      fmt::format("kairos: seccomp: forbidden system call 16 (ioctl, request {:#x}) on thread "
			  "{} (tid {}); stopping\n",
			  forbidden, thread_name, child.pid));
}

bool vcpu_allowed(const FakeKvm &fake)
{
	for (unsigned long request :
	     std::initializer_list<unsigned long>{KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE})
		if (!passes(fake.kvm.vcpus[1], request))
			return false;
	return passes(fake.kvm.vm, KVM_IRQ_LINE);
}

// Its own vCPU's requests on its own fd and KVM_IRQ_LINE on the VM's pass;
// a VM ioctl such as KVM_CREATE_VCPU traps, and so does KVM_RUN on another
// vCPU's fd or on any other fd.
TEST_CASE("seccomp: a vCPU thread may make its own KVM ioctls and no others", "[seccomp]")
{
	auto requests = kairos::vmm::allowed_ioctls(ThreadKind::Vcpu);
	CHECK(std::vector<unsigned long>(requests.begin(), requests.end()) ==
	      std::vector<unsigned long>{KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE, KVM_IRQ_LINE});
	check_ioctls(ThreadKind::Vcpu, "test-vcpu", vcpu_allowed, vm_fd, KVM_CREATE_VCPU);
	check_ioctls(ThreadKind::Vcpu, "test-vcpu", vcpu_allowed, vm_fd, KVM_RUN);
	check_ioctls(ThreadKind::Vcpu, "test-vcpu", vcpu_allowed, vcpu0_fd, KVM_RUN);
	check_ioctls(ThreadKind::Vcpu, "test-vcpu", vcpu_allowed, other_fd, KVM_GET_REGS);
	// Only the vCPUs it was given.
	FakeKvm fake = open_fake_kvm();
	auto missing = kairos::vmm::build_filter(ThreadKind::Vcpu, fake.kvm, 2);
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message == "seccomp: no fd for vCPU 2 (2 known)");
	for (int fd : {fake.kvm.vm, fake.kvm.vcpus[0], fake.kvm.vcpus[1], fake.other})
		close(fd);
}

// An expiry's upcall is an edge the timer thread raises itself, on the
// VM's fd only (vmm/paravirt.cpp pulse_upcall); no other KVM ioctl, and no
// line through another fd.
TEST_CASE("seccomp: the timer thread may raise a line on the VM's fd, nothing more", "[seccomp]")
{
	auto allowed = [](const FakeKvm &fake) { return passes(fake.kvm.vm, KVM_IRQ_LINE); };
	check_ioctls(ThreadKind::Timer, "test-timer", allowed, vm_fd, KVM_RUN);
	check_ioctls(ThreadKind::Timer, "test-timer", allowed, vm_fd, KVM_IRQFD);
	check_ioctls(ThreadKind::Timer, "test-timer", allowed, vcpu0_fd, KVM_RUN);
	check_ioctls(ThreadKind::Timer, "test-timer", allowed, other_fd, KVM_IRQ_LINE);
}

// virtio-vsock's vhost requests and the TAP's offloads pass on any fd; of
// KVM's, only the device's interrupt line on the VM's fd
// (vmm/virtio_devices.h).
TEST_CASE("seccomp: a device thread may make vhost's ioctls and raise its line, no other KVM ones", "[seccomp]")
{
	auto allowed = [](const FakeKvm &fake) {
		auto requests = kairos::vmm::allowed_ioctls(ThreadKind::Device);
		for (unsigned long request : requests.first(requests.size() - 1))
			if (!passes(fake.other, request))
				return false;
		return passes(fake.other, TUNSETOFFLOAD) && passes(fake.kvm.vm, KVM_IRQ_LINE);
	};
	check_ioctls(ThreadKind::Device, "test-device", allowed, vm_fd, KVM_RUN);
	check_ioctls(ThreadKind::Device, "test-device", allowed, vm_fd, KVM_IRQFD);
	check_ioctls(ThreadKind::Device, "test-device", allowed, vcpu0_fd, KVM_RUN);
	check_ioctls(ThreadKind::Device, "test-device", allowed, other_fd, KVM_IRQ_LINE);
}

// The event loop raises lines on the VM's fd and restores the terminal; it
// never runs a vCPU, assigns an irqfd or changes memory slots, and raises
// no line through another fd.
TEST_CASE("seccomp: the main thread may raise a line and restore the terminal, nothing more", "[seccomp]")
{
	auto requests = kairos::vmm::allowed_ioctls(ThreadKind::Main);
	CHECK(std::vector<unsigned long>(requests.begin(), requests.end()) ==
	      std::vector<unsigned long>{KVM_IRQ_LINE, TCSETS, TCGETS});
	auto allowed = [](const FakeKvm &fake) {
		return passes(fake.kvm.vm, KVM_IRQ_LINE) && passes(fake.other, TCSETS) && passes(fake.other, TCGETS);
	};
	check_ioctls(ThreadKind::Main, "test-loop", allowed, vm_fd, KVM_RUN);
	check_ioctls(ThreadKind::Main, "test-loop", allowed, vm_fd, KVM_IRQFD);
	check_ioctls(ThreadKind::Main, "test-loop", allowed, vm_fd, KVM_SET_USER_MEMORY_REGION);
	check_ioctls(ThreadKind::Main, "test-loop", allowed, other_fd, KVM_IRQ_LINE);
}

// Its tgkill (the vCPUs' kick) reaches this process's threads only.
TEST_CASE("seccomp: the main thread signals its own threads, no other process", "[seccomp]")
{
	auto child = kairos::test::run_in_child([] {
		pid_t parent = getppid();
		FakeKvm fake = open_fake_kvm();
		auto filter = kairos::vmm::build_filter(ThreadKind::Main, fake.kvm);
		confine_or_exit(filter, "test-loop");
		if (syscall(SYS_tgkill, getpid(), gettid(), 0) != 0)  // signal 0: a check only
			_exit(101);
		syscall(SYS_tgkill, parent, parent, 0);
		_exit(102);  // not reached: the handler exits
	});
	CHECK(child.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(child.stderr_text == fmt::format("kairos: seccomp: forbidden system call {} (tgkill) on thread "
					       "test-loop (tid {}); stopping\n",
					       SYS_tgkill, child.pid));
}

// struct sched_attr, SCHED_ATTR_SIZE_VER0: SCHED_OTHER at nice 0, which
// any thread may ask for itself.
long set_normal_scheduling(pid_t tid)
{
	struct {
		uint32_t size = 48, policy = SCHED_OTHER;
		uint64_t flags = 0;
		int32_t nice = 0;
		uint32_t priority = 0;
		uint64_t runtime = 0, deadline = 0, period = 0;
	} attr;
	static_assert(sizeof(attr) == 48);
	return syscall(SYS_sched_setattr, tid, &attr, 0U);
}

// With CAP_SYS_NICE, sched_setattr reaches any thread of any user: the
// timer thread may aim it at the vCPU threads it was given, no other.
TEST_CASE("seccomp: the timer thread may change the scheduling of the vCPU threads only", "[seccomp]")
{
	auto child = kairos::test::run_in_child([] {
		pid_t self = gettid();
		pid_t parent = getppid();  // before the filter, which has no getppid
		const uint32_t vcpu_threads[] = {static_cast<uint32_t>(self)};
		auto filter = kairos::vmm::build_timer_filter(-1, vcpu_threads);
		confine_or_exit(filter, "test-timer");
		if (set_normal_scheduling(self) != 0)
			_exit(101);
		set_normal_scheduling(parent);
		_exit(102);  // not reached: the handler exits
	});
	CHECK(child.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(child.stderr_text == fmt::format("kairos: seccomp: forbidden system call {} (sched_setattr) on thread "
					       "test-timer (tid {}); stopping\n",
					       SYS_sched_setattr, child.pid));
	const char *names[] = {"read"};
	const uint32_t one[] = {1};
	const kairos::FirstArgumentAllowance unlisted[] = {{"sched_setattr", one}};
	auto refused = kairos::SeccompFilter::allow_only(names, {}, unlisted);
	REQUIRE_FALSE(refused.ok());
	CHECK(refused.error().message == "seccomp: arguments given for 'sched_setattr', but it is not in the list");
}

// The filters a run installs are the ones above: Confinement::prepare
// builds them from the machine's descriptors, and each thread enters its
// own. (Its main thread's filter once allowed every ioctl while the lists
// said otherwise: only a test through prepare sees that.)
TEST_CASE("seccomp: Confinement::prepare gives each thread its own filter", "[seccomp]")
{
	auto confined_child = [](auto body) {
		return kairos::test::run_in_child([&] {
			FakeKvm fake = open_fake_kvm();
			auto confinement = kairos::vmm::Confinement::prepare(kairos::vmm::Config{}, fake.kvm);
			if (fake.other < 0 || !confinement.ok())
				_exit(100);
			body(*confinement, fake);
			_exit(103);  // not reached: the handler exits
		});
	};
	auto main_thread = confined_child([](const kairos::vmm::Confinement &confinement, const FakeKvm &fake) {
		if (!confinement.enter(ThreadKind::Main, "kairos-main").ok() || !passes(fake.kvm.vm, KVM_IRQ_LINE))
			_exit(101);
		ioctl(fake.kvm.vm, KVM_RUN, 0);
	});
	CHECK(main_thread.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(main_thread.stderr_text == fmt::format("kairos: seccomp: forbidden system call 16 (ioctl, request "
						     "{:#x}) on thread kairos-main (tid {}); stopping\n",
						     KVM_RUN, main_thread.pid));

	auto vcpu_thread = confined_child([](const kairos::vmm::Confinement &confinement, const FakeKvm &fake) {
		if (confinement.enter(ThreadKind::Vcpu, "kairos-vcpu1").ok() ||
		    confinement.enter_vcpu(2, "kairos-vcpu2").ok())
			_exit(101);
		if (!confinement.enter_vcpu(1, "kairos-vcpu1").ok() || !vcpu_allowed(fake))
			_exit(102);
		ioctl(fake.kvm.vcpus[0], KVM_RUN, 0);
	});
	CHECK(vcpu_thread.exit_code == kairos::vmm::kExitForbiddenSyscall);
	auto timer_thread = confined_child([](const kairos::vmm::Confinement &confinement, const FakeKvm &fake) {
		const uint32_t vcpu_threads[] = {static_cast<uint32_t>(gettid())};
		pid_t parent = getppid();
		if (confinement.enter(ThreadKind::Timer, "kairos-timer").ok() ||
		    !confinement.enter_timer(vcpu_threads, "kairos-timer").ok() ||
		    set_normal_scheduling(gettid()) != 0 || !passes(fake.kvm.vm, KVM_IRQ_LINE))
			_exit(101);
		set_normal_scheduling(parent);
	});
	CHECK(timer_thread.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(timer_thread.stderr_text == fmt::format("kairos: seccomp: forbidden system call {} (sched_setattr) on "
						      "thread kairos-timer (tid {}); stopping\n",
						      SYS_sched_setattr, timer_thread.pid));
	CHECK(vcpu_thread.stderr_text == fmt::format("kairos: seccomp: forbidden system call 16 (ioctl, request "
						     "{:#x}) on thread kairos-vcpu1 (tid {}); stopping\n",
						     KVM_RUN, vcpu_thread.pid));
}

TEST_CASE("seccomp: the test-only trigger names a thread kind or nothing", "[seccomp]")
{
	using kairos::vmm::TestViolation;
	CHECK(kairos::vmm::parse_test_violation(nullptr)->has_value() == false);
	CHECK(kairos::vmm::parse_test_violation("")->has_value() == false);
	CHECK(kairos::vmm::parse_test_violation("vcpu")->value() == TestViolation{ThreadKind::Vcpu});
	CHECK(kairos::vmm::parse_test_violation("timer")->value() == TestViolation{ThreadKind::Timer});
	CHECK(kairos::vmm::parse_test_violation("loop")->value() == TestViolation{ThreadKind::Main});
	CHECK(kairos::vmm::parse_test_violation("device")->value() == TestViolation{ThreadKind::Device});
	CHECK(kairos::vmm::parse_test_violation("vcpu-ioctl")->value() == TestViolation{ThreadKind::Vcpu, true});
	auto bad = kairos::vmm::parse_test_violation("gpu");
	REQUIRE_FALSE(bad.ok());
	CHECK(bad.error().message ==
	      "KAIROS_TEST_SECCOMP_VIOLATION (test only): must be vcpu, vcpu-ioctl, timer, loop or device, got 'gpu'");
}
