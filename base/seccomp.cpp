#include "base/seccomp.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <seccomp.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kairos {
static_assert(kOpenatWriteFlags == (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND));

namespace {

// x86-64 numbers end near 460 (Linux 6.x); a larger one prints as "?".
constexpr long kSyscallNameTableSize = 512;
constexpr size_t kNameLength = 32;
std::array<std::array<char, kNameLength>, kSyscallNameTableSize> syscall_names;
bool syscall_names_loaded = false;

int violation_exit_code = 1;
// Read by the SIGSYS handler on the thread that trapped: trivially
// constructed, so reading it needs no TLS initialisation call.
constexpr size_t kLabelLength = 32;
thread_local constinit char thread_label[kLabelLength] = "unconfined";
thread_local constinit pid_t thread_tid = 0;

using SeccompContext = std::unique_ptr<void, decltype(&seccomp_release)>;

// The kernel passes int and unsigned int arguments in the low 32 bits of a
// register whose upper half is undefined: compare only those.
constexpr uint64_t kLow32 = 0xffffffffULL;

scmp_arg_cmp low32_equals(unsigned argument, uint64_t value)
{
	return scmp_arg_cmp{argument, SCMP_CMP_MASKED_EQ, kLow32, value & kLow32};
}

bool listed(std::span<const char *const> syscalls, std::string_view name)
{
	return std::any_of(syscalls.begin(), syscalls.end(), [&](const char *entry) { return name == entry; });
}

// The BPF libseccomp generates, read back through a memfd (2.5 has no
// in-memory export), so that installing it later is one system call.
Result<std::vector<sock_filter>> export_program(scmp_filter_ctx context)
{
	UniqueFd memory(memfd_create("kairos-seccomp", MFD_CLOEXEC));
	if (!memory)
		return errno_error("memfd_create for the seccomp filter");
	if (int error = seccomp_export_bpf(context, memory.get()); error < 0)
		return errno_error("seccomp_export_bpf", -error);
	off_t size = lseek(memory.get(), 0, SEEK_END);
	if (size <= 0 || size % sizeof(sock_filter) != 0)
		return make_error("seccomp_export_bpf wrote {} bytes, not whole BPF instructions", size);
	std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
	if (pread(memory.get(), program.data(), static_cast<size_t>(size), 0) != size)
		return errno_error("reading back the seccomp filter");
	return program;
}

// ioctl(fd, request, ...) for each allowance's requests, on its fds (or
// any fd). Masked, so the filter sees what the kernel sees: libseccomp
// 2.5's SCMP_A1_32 compares all 64 bits with the 32-bit value.
Status allow_ioctls(scmp_filter_ctx context, std::span<const IoctlAllowance> ioctls)
{
	for (const IoctlAllowance &allowance : ioctls) {
		for (unsigned long request : allowance.requests) {
			scmp_arg_cmp cmd = low32_equals(1, request);
			int error = 0;
			if (allowance.fds.empty())
				error = seccomp_rule_add(context, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmd);
			for (int fd : allowance.fds) {
				scmp_arg_cmp on_fd = low32_equals(0, static_cast<uint32_t>(fd));
				if (error == 0)
					error = seccomp_rule_add(context, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 2, on_fd,
								 cmd);
			}
			if (error < 0)
				return errno_error(fmt::format("seccomp: allowing ioctl {:#x}", request), -error);
		}
	}
	return {};
}

// Call nr with one of the allowance's first arguments (low 32 bits).
Status allow_first_arguments(scmp_filter_ctx context, int nr, const FirstArgumentAllowance &allowance)
{
	for (uint32_t value : allowance.values) {
		int error = seccomp_rule_add(context, SCMP_ACT_ALLOW, nr, 1, low32_equals(0, value));
		if (error < 0)
			return errno_error(fmt::format("seccomp: allowing '{}' for {}", allowance.syscall, value),
					   -error);
	}
	return {};
}

// openat(dirfd, path, flags, mode) with none of kOpenatWriteFlags.
Status allow_openat_read_only(scmp_filter_ctx context)
{
	int error = seccomp_rule_add(context, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				     SCMP_A2_64(SCMP_CMP_MASKED_EQ, kOpenatWriteFlags, 0));
	if (error < 0)
		return errno_error("seccomp: allowing openat read-only", -error);
	return {};
}

// Appends decimal n; async-signal-safe.
void append_number(char *buffer, size_t size, size_t &length, long long n)
{
	char digits[24];
	size_t count = 0;
	unsigned long long value =
		n < 0 ? 0ULL - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
	do {
		digits[count++] = static_cast<char>('0' + value % 10);
		value /= 10;
	} while (value != 0);
	if (n < 0)
		digits[count++] = '-';
	while (count > 0 && length < size)
		buffer[length++] = digits[--count];
}

// Appends n in lower-case hexadecimal, no prefix; async-signal-safe.
void append_hex(char *buffer, size_t size, size_t &length, unsigned long n)
{
	char digits[16];
	size_t count = 0;
	do {
		digits[count++] = "0123456789abcdef"[n % 16];
		n /= 16;
	} while (n != 0);
	while (count > 0 && length < size)
		buffer[length++] = digits[--count];
}

void append_text(char *buffer, size_t size, size_t &length, std::string_view text)
{
	for (char c : text) {
		if (length >= size)
			return;
		buffer[length++] = c;
	}
}

// SCMP_ACT_TRAP rather than SCMP_ACT_KILL_PROCESS: a killed process says
// nothing (SIGSYS, the call's number only in the audit log, if any), and
// the person looking at a dead VM needs the call and the thread. The
// handler writes one line and _exits: no malloc, no locks, no fmt, and
// write/exit_group are on every thread's list.
void on_forbidden_syscall(int, siginfo_t *info, void *context)
{
	// A trapped ioctl or openat may have failed on an argument: name it
	// (rsi and rdx at the system call, x86-64 ABI).
	std::optional<ViolationArgument> argument;
	if (context) {
		const greg_t *registers = static_cast<ucontext_t *>(context)->uc_mcontext.gregs;
		argument = violation_argument(info->si_syscall, static_cast<unsigned long>(registers[REG_RSI]),
					      static_cast<unsigned long>(registers[REG_RDX]));
	}
	char line[192];
	size_t length =
		format_seccomp_violation(line, sizeof line, info->si_syscall, thread_label, thread_tid, argument);
	ssize_t ignored = write(STDERR_FILENO, line, length);
	(void)ignored;
	_exit(violation_exit_code);
}

}  // namespace

Result<SeccompFilter> SeccompFilter::allow_only(std::span<const char *const> syscalls,
						std::span<const IoctlAllowance> ioctls,
						std::span<const FirstArgumentAllowance> first_arguments)
{
	if (!ioctls.empty() && !listed(syscalls, "ioctl"))
		return make_error("seccomp: ioctl requests given, but ioctl is not in the list");
	for (const FirstArgumentAllowance &allowance : first_arguments)
		if (!listed(syscalls, allowance.syscall))
			return make_error("seccomp: arguments given for '{}', but it is not in the list",
					  allowance.syscall);
	SeccompContext context(seccomp_init(SCMP_ACT_TRAP), seccomp_release);
	if (!context)
		return make_error("seccomp_init failed");
	// The caller sets no_new_privs once for the process.
	if (int error = seccomp_attr_set(context.get(), SCMP_FLTATR_CTL_NNP, 0); error < 0)
		return errno_error("seccomp_attr_set SCMP_FLTATR_CTL_NNP", -error);
	// A binary tree over the syscall numbers rather than a list: each
	// system call of every thread runs this filter.
	if (int error = seccomp_attr_set(context.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); error < 0)
		return errno_error("seccomp_attr_set SCMP_FLTATR_CTL_OPTIMIZE", -error);
	for (const char *name : syscalls) {
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR)
			return make_error("seccomp: no system call named '{}' on this architecture", name);
		if (nr == SCMP_SYS(ioctl) && !ioctls.empty()) {
			KAIROS_TRY(allow_ioctls(context.get(), ioctls));
			continue;
		}
		if (nr == SCMP_SYS(openat)) {
			KAIROS_TRY(allow_openat_read_only(context.get()));
			continue;
		}
		auto restricted = std::find_if(first_arguments.begin(), first_arguments.end(),
					       [&](const FirstArgumentAllowance &allowance) {
						       return std::string_view(allowance.syscall) == name;
					       });
		if (restricted != first_arguments.end()) {
			KAIROS_TRY(allow_first_arguments(context.get(), nr, *restricted));
			continue;
		}
		if (int error = seccomp_rule_add(context.get(), SCMP_ACT_ALLOW, nr, 0); error < 0)
			return errno_error(fmt::format("seccomp: allowing '{}'", name), -error);
	}
	KAIROS_TRY_ASSIGN(program, export_program(context.get()));
	return SeccompFilter(std::move(program));
}

Status SeccompFilter::install_on_this_thread(std::string_view label) const
{
	size_t length = std::min(label.size(), kLabelLength - 1);
	std::memcpy(thread_label, label.data(), length);
	thread_label[length] = '\0';
	thread_tid = static_cast<pid_t>(syscall(SYS_gettid));
	sock_fprog program{static_cast<unsigned short>(program_.size()), const_cast<sock_filter *>(program_.data())};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0)
		return errno_error(fmt::format("seccomp: installing the filter on thread {}", label));
	return {};
}

Status set_no_new_privs()
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return errno_error("prctl(PR_SET_NO_NEW_PRIVS)");
	return {};
}

void load_syscall_names()
{
	if (syscall_names_loaded)
		return;
	for (long nr = 0; nr < kSyscallNameTableSize; ++nr) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(nr));
		const char *text = name ? name : "?";
		std::strncpy(syscall_names[nr].data(), text, kNameLength - 1);
		std::free(name);
	}
	syscall_names_loaded = true;
}

const char *syscall_name(long nr)
{
	if (!syscall_names_loaded || nr < 0 || nr >= kSyscallNameTableSize)
		return "?";
	return syscall_names[nr].data();
}

std::optional<ViolationArgument> violation_argument(long nr, unsigned long arg1, unsigned long arg2)
{
	if (nr == SYS_ioctl)
		return ViolationArgument{"request", arg1};
	if (nr == SYS_openat)
		return ViolationArgument{"flags", arg2};
	return std::nullopt;
}

size_t format_seccomp_violation(char *buffer, size_t size, long nr, std::string_view label, pid_t tid,
				std::optional<ViolationArgument> argument)
{
	size_t length = 0;
	append_text(buffer, size, length, "kairos: seccomp: forbidden system call ");
	append_number(buffer, size, length, nr);
	append_text(buffer, size, length, " (");
	append_text(buffer, size, length, syscall_name(nr));
	if (argument) {
		append_text(buffer, size, length, ", ");
		append_text(buffer, size, length, argument->name);
		append_text(buffer, size, length, " 0x");
		append_hex(buffer, size, length, argument->value);
	}
	append_text(buffer, size, length, ") on thread ");
	append_text(buffer, size, length, label);
	append_text(buffer, size, length, " (tid ");
	append_number(buffer, size, length, tid);
	append_text(buffer, size, length, "); stopping\n");
	return length;
}

Status install_seccomp_violation_reporter(int exit_code)
{
	load_syscall_names();
	violation_exit_code = exit_code;
	struct sigaction action {};
	action.sa_sigaction = on_forbidden_syscall;
	action.sa_flags = SA_SIGINFO;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGSYS, &action, nullptr) != 0)
		return errno_error("sigaction for SIGSYS (the seccomp reporter)");
	return {};
}

int seccomp_mode_from_status(std::string_view status)
{
	constexpr std::string_view kField = "\nSeccomp:";
	size_t at = status.find(kField);
	if (at == std::string_view::npos)
		return -1;
	size_t digit = status.find_first_not_of(" \t", at + kField.size());
	if (digit == std::string_view::npos || status[digit] < '0' || status[digit] > '9')
		return -1;
	return status[digit] - '0';
}

int seccomp_mode_of_this_process()
{
	std::ifstream in("/proc/self/status");
	if (!in)
		return -1;
	// The leading newline lets the parser match the field at the very
	// first line too. Streamed, not "\n" + str(): GCC 12's -Wrestrict
	// misreads that concatenation in Release builds.
	std::ostringstream text;
	text << '\n' << in.rdbuf();
	return seccomp_mode_from_status(text.str());
}

}  // namespace kairos
