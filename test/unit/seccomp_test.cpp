// The parts of confinement that need no filter installed: the name table
// and report line the SIGSYS handler uses, the allow-lists, the /proc
// field --stats reports and the test-only trigger.
#include <catch2/catch.hpp>

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "base/seccomp.h"
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
	for (ThreadKind kind : {ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Timer}) {
		auto list = kairos::vmm::allowed_syscalls(kind);
		auto filter = kairos::SeccompFilter::allow_only(list);
		REQUIRE(filter.ok());
		CHECK(filter->instructions() > list.size());
		CHECK(std::none_of(list.begin(), list.end(), [](const char *name) {
			return std::string(name) == "getpgrp" || std::string(name) == "execve" ||
			       std::string(name) == "clone" || std::string(name) == "clone3";
		}));
	}
	// Only the vCPU and main threads talk to KVM or the terminal.
	auto timer = kairos::vmm::allowed_syscalls(ThreadKind::Timer);
	CHECK(std::find(timer.begin(), timer.end(), std::string("ioctl")) == timer.end());
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
	int pipe_fds[2];
	REQUIRE(pipe(pipe_fds) == 0);
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		dup2(pipe_fds[1], STDERR_FILENO);
		auto filter = kairos::SeccompFilter::allow_only(kairos::vmm::allowed_syscalls(ThreadKind::Vcpu));
		if (!filter.ok() || !kairos::set_no_new_privs().ok() ||
		    !kairos::install_seccomp_violation_reporter(kairos::vmm::kExitForbiddenSyscall).ok() ||
		    !filter->install_on_this_thread("test-vcpu").ok())
			_exit(100);
		if (kairos::seccomp_mode_of_this_process() != 2)
			_exit(101);
		syscall(SYS_getpgrp);
		_exit(102);  // not reached: the handler exits
	}
	close(pipe_fds[1]);
	std::string output;
	char buffer[256];
	for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
		output.append(buffer, static_cast<size_t>(n));
	close(pipe_fds[0]);
	int status = 0;
	REQUIRE(waitpid(child, &status, 0) == child);
	REQUIRE(WIFEXITED(status));
	CHECK(WEXITSTATUS(status) == kairos::vmm::kExitForbiddenSyscall);
	CHECK(output == "kairos: seccomp: forbidden system call 111 (getpgrp) on thread test-vcpu (tid " +
				std::to_string(child) + "); stopping\n");
}

TEST_CASE("seccomp: the test-only trigger names a thread kind or nothing", "[seccomp]")
{
	CHECK(kairos::vmm::parse_test_violation(nullptr)->has_value() == false);
	CHECK(kairos::vmm::parse_test_violation("")->has_value() == false);
	CHECK(kairos::vmm::parse_test_violation("vcpu")->value() == ThreadKind::Vcpu);
	CHECK(kairos::vmm::parse_test_violation("timer")->value() == ThreadKind::Timer);
	CHECK(kairos::vmm::parse_test_violation("loop")->value() == ThreadKind::Main);
	auto bad = kairos::vmm::parse_test_violation("gpu");
	REQUIRE_FALSE(bad.ok());
	CHECK(bad.error().message ==
	      "KAIROS_TEST_SECCOMP_VIOLATION (test only): must be vcpu, timer or loop, got 'gpu'");
}
