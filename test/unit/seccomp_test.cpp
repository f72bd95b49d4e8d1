// The parts of confinement that need no filter installed: the name table
// and report line the SIGSYS handler uses, the allow-lists, the /proc
// field --stats reports and the test-only trigger.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
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
	// Only the vCPU and main threads talk to KVM or the terminal; a
	// device thread's ioctls are the TAP's TUNSETOFFLOAD and vhost's
	// (seccomp filters them).
	auto timer = kairos::vmm::allowed_syscalls(ThreadKind::Timer);
	CHECK(std::find(timer.begin(), timer.end(), std::string("ioctl")) == timer.end());
	auto device_ioctls = kairos::vmm::allowed_ioctls(ThreadKind::Device);
	REQUIRE(device_ioctls.size() == 9);
	CHECK(device_ioctls[0] == TUNSETOFFLOAD);
	for (unsigned long request : device_ioctls.subspan(1))
		CHECK(_IOC_TYPE(request) == 0xAF);  // VHOST_VIRTIO (linux/vhost.h)
	CHECK(kairos::vmm::allowed_ioctls(ThreadKind::Timer).empty());
}

// docs/SECURITY.md and ARCHITECTURE.md give these counts: change them together.
TEST_CASE("seccomp: each list is as long as docs/SECURITY.md says", "[seccomp]")
{
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Main).size() == 34);
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Vcpu).size() == 26);
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Timer).size() == 26);
	CHECK(kairos::vmm::allowed_syscalls(ThreadKind::Device).size() == 26);
	// The control socket's: accept, and the removal of its file at the stop.
	auto main = kairos::vmm::allowed_syscalls(ThreadKind::Main);
	for (const char *call : {"accept4", "unlinkat"})
		CHECK(std::find(main.begin(), main.end(), std::string(call)) != main.end());
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
		if (!filter.ok() || !kairos::set_no_new_privs().ok() ||
		    !kairos::install_seccomp_violation_reporter(kairos::vmm::kExitForbiddenSyscall).ok() ||
		    !filter->install_on_this_thread("test-vcpu").ok())
			_exit(100);
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
		if (!filter.ok() || !kairos::set_no_new_privs().ok() ||
		    !kairos::install_seccomp_violation_reporter(kairos::vmm::kExitForbiddenSyscall).ok() ||
		    !filter->install_on_this_thread("test-loop").ok())
			_exit(100);
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
	auto filter = kairos::SeccompFilter::allow_only(names, requests);
	REQUIRE_FALSE(filter.ok());
	CHECK(filter.error().message == "seccomp: ioctl requests given, but ioctl is not in the list");
}

// In a child, under KIND's filter: every request on its ioctl list passes
// the filter (on /dev/null it then fails with ENOTTY, from the kernel, not
// the filter), also with garbage in the upper half the kernel ignores;
// FORBIDDEN traps and is named with its request.
void check_ioctl_list(ThreadKind kind, const char *thread_name, unsigned long forbidden)
{
	auto requests = kairos::vmm::allowed_ioctls(kind);
	REQUIRE_FALSE(requests.empty());
	REQUIRE(std::find(requests.begin(), requests.end(), forbidden) == requests.end());
	auto child = kairos::test::run_in_child([&] {
		int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		auto filter = kairos::SeccompFilter::allow_only(kairos::vmm::allowed_syscalls(kind), requests);
		if (null_fd < 0 || !filter.ok() || !kairos::set_no_new_privs().ok() ||
		    !kairos::install_seccomp_violation_reporter(kairos::vmm::kExitForbiddenSyscall).ok() ||
		    !filter->install_on_this_thread(thread_name).ok())
			_exit(100);
		for (unsigned long request : requests)
			if (ioctl(null_fd, request, 0) != -1 || errno != ENOTTY)
				_exit(101);
		if (syscall(SYS_ioctl, null_fd, (1UL << 32) | requests[0], 0) != -1 || errno != ENOTTY)
			_exit(102);
		ioctl(null_fd, forbidden, 0);
		_exit(103);  // not reached: the handler exits
	});
	CHECK(child.exit_code == kairos::vmm::kExitForbiddenSyscall);
	CHECK(child.stderr_text ==
	      fmt::format("kairos: seccomp: forbidden system call 16 (ioctl, request {:#x}) on thread "
			  "{} (tid {}); stopping\n",
			  forbidden, thread_name, child.pid));
}

// A VM ioctl such as KVM_CREATE_VCPU traps on a vCPU thread.
TEST_CASE("seccomp: a vCPU thread may make its own KVM ioctls and no others", "[seccomp]")
{
	auto requests = kairos::vmm::allowed_ioctls(ThreadKind::Vcpu);
	REQUIRE(std::find(requests.begin(), requests.end(), KVM_RUN) != requests.end());
	check_ioctl_list(ThreadKind::Vcpu, "test-vcpu", KVM_CREATE_VCPU);
}

// virtio-vsock's vhost requests pass, a KVM ioctl traps.
TEST_CASE("seccomp: a device thread may make vhost's ioctls and no KVM ones", "[seccomp]")
{
	check_ioctl_list(ThreadKind::Device, "test-device", KVM_RUN);
}

// The event loop raises lines and restores the terminal; it never runs a
// vCPU, assigns an irqfd or changes memory slots.
TEST_CASE("seccomp: the main thread may raise a line and restore the terminal, nothing more", "[seccomp]")
{
	auto requests = kairos::vmm::allowed_ioctls(ThreadKind::Main);
	for (unsigned long request : {KVM_IRQ_LINE, static_cast<unsigned long>(TCSETS)})
		CHECK(std::find(requests.begin(), requests.end(), request) != requests.end());
	check_ioctl_list(ThreadKind::Main, "test-loop", KVM_RUN);
	check_ioctl_list(ThreadKind::Main, "test-loop", KVM_IRQFD);
	check_ioctl_list(ThreadKind::Main, "test-loop", KVM_SET_USER_MEMORY_REGION);
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
