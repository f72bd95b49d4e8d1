// Confinement (issue 12, after Firecracker's seccomp model): after setup,
// each thread of `kairos run` installs on itself a seccomp allow-list of the
// system calls its kind makes at run time, before it serves the guest. A
// call outside it stops the process with one line naming the call and the
// thread, and kExitForbiddenSyscall. The lists, and how they were measured,
// are in confinement.cpp and docs/SECURITY.md.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "base/seccomp.h"
#include "vmm/config.h"

namespace kairos::vmm {

// Process exit code after a forbidden system call (kairos --help, README).
inline constexpr int kExitForbiddenSyscall = 6;

// Each kind has its own list. Main is the event loop.
enum class ThreadKind { Main, Vcpu, Timer };

// The system calls a thread of this kind may make once confined.
std::span<const char *const> allowed_syscalls(ThreadKind kind);

// TEST ONLY: KAIROS_TEST_SECCOMP_VIOLATION=vcpu|timer|loop makes that
// thread call getpgrp(2), which no list allows, right after it is
// confined: the guest tests' proof that the filter holds on every kind.
// Nothing else reads this variable. Empty: unset; an error names it.
inline constexpr const char *kTestViolationVariable = "KAIROS_TEST_SECCOMP_VIOLATION";
Result<std::optional<ThreadKind>> parse_test_violation(const char *value);

class Confinement {
public:
	// During setup: compiles the three filters, sets no_new_privs and the
	// SIGSYS reporter. With security.seccomp false, nothing; enter() is
	// then a no-op.
	static Result<Confinement> prepare(const Config &config);

	// On the calling thread, before it serves the guest. label names it in
	// the violation report ("kairos-vcpu0").
	Status enter(ThreadKind kind, std::string_view label) const;

private:
	Confinement() = default;

	std::optional<SeccompFilter> main_;
	std::optional<SeccompFilter> vcpu_;
	std::optional<SeccompFilter> timer_;
	std::optional<ThreadKind> test_violation_;
};

}  // namespace kairos::vmm
