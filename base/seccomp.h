// Seccomp allow-lists, compiled ahead of time and installed by each thread
// on itself (Firecracker's model: one filter per thread kind, built before
// the guest runs, installed with a single seccomp(2) call). A call outside
// the list traps: the SIGSYS reporter names it (and an ioctl's request) and
// the thread, then ends the process.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kairos {

// ioctl requests a filter allows, on these descriptors only; with no
// descriptors, on any. Compared on the low 32 bits the kernel reads (its
// fd and cmd are unsigned ints), so higher bits cannot sneak one past.
struct IoctlAllowance {
	std::span<const unsigned long> requests;
	std::span<const int> fds;
};

// A system call allowed only when its first argument, compared on its low
// 32 bits, is one of these values (sched_setattr's thread id, say); with no
// values, never.
struct FirstArgumentAllowance {
	const char *syscall;
	std::span<const uint32_t> values;
};

// A compiled BPF program: the listed system calls are allowed, every other
// one (and any other architecture's) traps with SIGSYS.
class SeccompFilter {
public:
	// Names as in <sys/syscall.h> without "SYS_" ("read", "ioctl"); an
	// unknown name is an error, so a typo cannot silently allow nothing.
	// With ioctls, "ioctl" (then required in syscalls) is allowed for
	// those requests on those descriptors only; without, for any.
	// "openat" is always allowed read-only (kOpenatWriteFlags clear): a
	// confined thread reads /proc, it never creates or writes a file, and
	// cannot reopen a device such as /dev/kvm read-write.
	// A call named in first_arguments (then required in syscalls too) is
	// allowed only with those first arguments.
	static Result<SeccompFilter> allow_only(std::span<const char *const> syscalls,
						std::span<const IoctlAllowance> ioctls = {},
						std::span<const FirstArgumentAllowance> first_arguments = {});

	// Installs the filter on the calling thread only (no TSYNC): each
	// thread kind installs its own. Threads it creates later inherit it.
	// Needs no_new_privs (set_no_new_privs) or CAP_SYS_ADMIN. thread_label
	// names the thread in the violation report (copied, at most 31 chars).
	Status install_on_this_thread(std::string_view thread_label) const;

	size_t instructions() const { return program_.size(); }

private:
	explicit SeccompFilter(std::vector<sock_filter> program) : program_(std::move(program)) {}
	std::vector<sock_filter> program_;
};

// PR_SET_NO_NEW_PRIVS: required to install a filter without CAP_SYS_ADMIN,
// and execve can no longer gain privileges (setuid, file capabilities).
Status set_no_new_privs();

// Installs the process-wide SIGSYS handler: a trapped call writes one line
// to stderr, "kairos: seccomp: forbidden system call N (NAME) on thread
// LABEL (tid T); stopping", and the process _exits with exit_code. Fills
// the system call name table first (it allocates; the handler must not).
Status install_seccomp_violation_reporter(int exit_code);

// The name of system call nr on this architecture ("?" when unknown or
// before the table is filled). Async-signal-safe.
const char *syscall_name(long nr);
// Fills the table syscall_name reads; idempotent, not async-signal-safe.
void load_syscall_names();

// The open(2) flags a confined thread's openat may not carry: write
// access, creation, truncation, appending.
inline constexpr unsigned long kOpenatWriteFlags = 03 | 0100 | 01000 | 02000;  // O_ACCMODE O_CREAT O_TRUNC O_APPEND

// The argument a report names beside the call, when the filter looked at
// it: an ioctl's "request", an openat's "flags".
struct ViolationArgument {
	const char *name;
	unsigned long value;
};

// The argument of a trapped call nr that the filter looked at (from the
// registers at the call, x86-64 ABI), or none. Async-signal-safe.
std::optional<ViolationArgument> violation_argument(long nr, unsigned long arg1, unsigned long arg2);

// The report line for a forbidden call, newline included, into buffer
// (truncated to size); returns its length. A refused ioctl names its
// request too, a refused openat its flags. Async-signal-safe.
size_t format_seccomp_violation(char *buffer, size_t size, long nr, std::string_view thread_label, pid_t tid,
				std::optional<ViolationArgument> argument = std::nullopt);

// The "Seccomp:" field of a /proc/PID/status text: 0 off, 1 strict, 2
// filter; -1 when absent.
int seccomp_mode_from_status(std::string_view proc_status);
// This process's main thread's mode (/proc/self/status), -1 if unreadable.
int seccomp_mode_of_this_process();

}  // namespace kairos
