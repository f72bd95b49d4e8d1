// kairos: the command-line front end.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/error.h"
#include "base/unique_fd.h"
#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/confinement.h"
#include "vmm/control_socket.h"
#include "vmm/ctl.h"
#include "vmm/event_log.h"
#include "vmm/guest_loader.h"
#include "vmm/host_memory.h"
#include "vmm/kvm.h"
#include "vmm/machine.h"
#include "vmm/preflight.h"
#include "vmm/stop_sources.h"

namespace {

using kairos::vmm::CommandLine;
using kairos::vmm::EventKind;
using kairos::vmm::EventLog;

constexpr int kExitUsage = 2;
constexpr int kExitHostError = 1;

constexpr const char *kUsage = R"(usage: kairos COMMAND [CONFIG.json] [OPTIONS]

Kairos: a KVM virtual machine monitor that keeps guest time accurate on a
loaded host.

commands:
  run [CONFIG.json] [OPTIONS]     boot the VM described by CONFIG.json and
                                  the options (--kernel is enough)
  check [CONFIG.json] [OPTIONS]   validate the VM and print its effective
                                  configuration (JSON) without running it
  ctl SOCKET COMMAND              drive a VM run with --api-sock SOCKET:
                                  status, stats, pause, resume, shutdown,
                                  quit, reset, raise-event PORT
                                  (kairos ctl --help)
  --help, -h                      show this help
  --version, -V, version          show the version (also after run/check)

options of run and check (each wins over its key in CONFIG.json; paths are
relative to the current directory, CONFIG.json's own to its folder):
  --kernel FILE       the kernel to boot: a bzImage, or an ELF vmlinux with a
                      PVH entry note (boot.kernel)
  --initrd FILE       the initramfs (boot.initrd)
  --append TEXT       the whole kernel command line (boot.cmdline)
  --cpus N            vCPUs, 1..64 (machine.vcpus)
  --memory MIB        guest RAM in MiB, 64..65536 (machine.memory_mib)
  --log-level LEVEL   which messages to print on stderr: error, warn
                      (default), info or debug; errors and the line that
                      says why the VM stopped are always printed
options of run:
  --stats FILE        write per-VM statistics (JSON) to FILE when the VM stops
  --events FILE       log what happens (start, vCPUs running, kairos.ko's
                      registrations, guest panics, timer-thread failures,
                      the stop) to FILE as it happens, one JSON object a
                      line; a regular file (tail -f follows it), not stdout
  --api-sock FILE     serve the control socket FILE (a Unix socket, mode
                      0600, removed at the stop) for `kairos ctl`; a file
                      that exists and is not a stale socket is refused

examples:
  kairos run --kernel /boot/vmlinuz --initrd initramfs.cpio --cpus 2
                                  a VM from options alone
  kairos run vm.json --memory 1024
                                  vm.json, with 1 GiB of RAM
  kairos check vm.json --cpus 4 > effective.json
                                  the config that would run, to keep

exit codes of `kairos run`:
  0    the guest powered off or reset itself, or Ctrl-A x
  1    host error (KVM unavailable, out of memory, ...)
  2    bad usage or invalid config
  3    the guest kernel panicked
  4    the guest triple-faulted
  5    KVM could not run the guest (entry failure, emulation error)
  6    a forbidden system call (security.seccomp): stderr names it and
       the thread
  128+N  stopped by signal N (SIGINT: 130, SIGTERM: 143)

On an interactive console, Ctrl-A x quits. See README.md for the config
reference.
)";

// What a command answers (an error, check's result, the stop line) is
// printed whatever --log-level says; only diagnostics go through a Logger.
int fail(int code, const std::string &message)
{
	fmt::print(stderr, "kairos: {}\n", message);
	return code;
}

// What `check` and `run` find before KVM: the image, the command line,
// the console file (exit 2), the host's memory (exit 1). An error about a
// flag's value names the flag.
int check_host_memory(const CommandLine &line, const kairos::vmm::Config &config, const kairos::Logger &log)
{
	if (auto memory = kairos::vmm::check_host_memory(config, log); !memory)
		return fail(kExitHostError, kairos::vmm::name_flag_in(memory.error().message, line.flags));
	return 0;
}

int check_before_kvm(const CommandLine &line, const kairos::vmm::Config &config, const kairos::Logger &log)
{
	if (auto ready = kairos::vmm::preflight(config); !ready)
		return fail(kExitUsage, kairos::vmm::name_flag_in(ready.error().message, line.flags));
	return check_host_memory(line, config, log);
}

int check_command(const CommandLine &line, const kairos::Logger &log)
{
	auto config = kairos::vmm::load_config(line.config_file, line.flags);
	if (!config)
		return fail(kExitUsage, config.error().message);
	if (int code = check_before_kvm(line, *config, log); code != 0)
		return code;
	// stdout is the effective config alone, ready to be saved and run.
	fmt::print("{}", kairos::vmm::config_to_json(*config));
	std::string what = line.config_file ? line.config_file->string() + ": " : "";
	fmt::print(stderr, "kairos: {}ok ({} vCPU{}, {} MiB), kernel: {}\n", what, config->machine.vcpus,
		   config->machine.vcpus == 1 ? "" : "s", config->machine.memory_mib,
		   kairos::vmm::kernel_format(*config));
	// What Kairos appends to the guest's command line, so its length is no surprise.
	std::string added = kairos::vmm::cmdline_additions(*config, kairos::vmm::kLongestTscKhz);
	if (!added.empty())
		fmt::print(stderr,
			   "kairos: kernel command line: {} bytes of boot.cmdline, and up to {} that Kairos adds "
			   "(' tsc_early_khz=' and the TSC rate, because clock.kvmclock is false)\n",
			   config->boot.cmdline.size(), added.size());
	return 0;
}

// No --events: a log that writes nothing, so callers need not ask.
kairos::Result<std::unique_ptr<EventLog>> open_event_log(const std::string &path, const kairos::Logger &log)
{
	if (path.empty())
		return EventLog::disabled(log);
	return EventLog::open(path, log);
}

// The `started` event: what runs, as `check` sums it up.
nlohmann::json started_data(const kairos::vmm::Config &config)
{
	return {{"version", KAIROS_VERSION},
		{"pid", getpid()},
		{"vcpus", config.machine.vcpus},
		{"memory_mib", config.machine.memory_mib},
		{"kernel", config.boot.kernel.string()},
		{"initrd", config.boot.initrd.string()},
		{"cmdline", config.boot.cmdline},
		{"kairos_device", config.clock.kairos},
		{"outsourcing", config.clock.kairos && config.outsourcing.enabled}};
}

// The last event: why the run stopped, as the stop line says it, and what
// the event log had to drop. `message` is describe(reason) and the detail.
void log_stop(EventLog &events, kairos::vmm::StopReason reason, const std::string &message, int code)
{
	events.emit(EventKind::Stopped, {{"reason", kairos::vmm::reason_name(reason)},
					 {"message", message},
					 {"exit_code", code},
					 {"events_dropped", events.dropped()},
					 {"dropped_by_kind", events.dropped_json()}});
	events.flush();
}

int report_stop(EventLog &events, kairos::vmm::StopReason reason, const std::string &message, int code)
{
	fmt::print(stderr, "kairos: {} (exit {})\n", message, code);
	log_stop(events, reason, message, code);
	return code;
}

// A host error once the events file is open: it still ends in `stopped`.
int host_failure(EventLog &events, const std::string &message)
{
	log_stop(events, kairos::vmm::StopReason::HostError, message, kExitHostError);
	return fail(kExitHostError, message);
}

// The --stats file, opened during setup and written at the stop: by then
// the process has dropped its capabilities, and root may no longer create
// a file where only CAP_DAC_OVERRIDE let it.
kairos::Result<kairos::UniqueFd> open_stats_file(const std::string &path)
{
	kairos::UniqueFd file(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
	if (!file)
		return kairos::errno_error("--stats " + path);
	return file;
}

// Every byte, through write(2): what every thread's seccomp list allows.
bool write_all(int fd, std::string_view text)
{
	while (!text.empty()) {
		ssize_t written = write(fd, text.data(), text.size());
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return false;
		text.remove_prefix(static_cast<size_t>(written));
	}
	return true;
}

int run_command(const CommandLine &line, const kairos::Logger &log)
{
	// A stop signal during setup waits for the loop, which stops the VM
	// the one way (stats, last line) instead of the signal killing us.
	if (auto blocked = kairos::vmm::block_stop_signals(); !blocked)
		return fail(kExitHostError, blocked.error().message);
	// A console reader that goes away (kairos run | head) must not kill
	// the VMM: its writes fail with EPIPE, and the guest runs on.
	signal(SIGPIPE, SIG_IGN);
	auto config = kairos::vmm::load_config(line.config_file, line.flags);
	if (!config)
		return fail(kExitUsage, config.error().message);
	const std::string &stats_path = line.stats_path;
	kairos::Status stats_writable =
		stats_path.empty() ? kairos::Status{} : kairos::vmm::check_writable_path(stats_path, "--stats");
	if (!stats_writable)
		return fail(kExitUsage, stats_writable.error().message);
	kairos::Status events_writable =
		line.events_path.empty() ? kairos::Status{} : kairos::vmm::check_events_path(line.events_path);
	if (!events_writable)
		return fail(kExitUsage, events_writable.error().message);
	// Found before KVM is touched: a config error is exit 2, whatever the
	// host. The guest is loaded here, once, into the memory it runs in,
	// and the drives' images stay locked from here to the machine's end.
	auto prepared = kairos::vmm::preflight_and_prepare(*config);
	if (!prepared)
		return fail(kExitUsage, kairos::vmm::name_flag_in(prepared.error().message, line.flags));
	if (int code = check_host_memory(line, *config, log); code != 0)
		return code;
	// Before KVM too: a path that is taken is the user's to fix (exit 2).
	// Declared before the machine, so it outlives the machine's loop.
	std::unique_ptr<kairos::vmm::ControlSocket> control;
	if (!line.api_socket_path.empty()) {
		auto socket = kairos::vmm::ControlSocket::open(line.api_socket_path);
		if (!socket)
			return fail(kExitUsage, socket.error().message);
		control = std::move(*socket);
	}
	// Opened before KVM, so a run that gets this far always ends in `stopped`.
	auto opened = open_event_log(line.events_path, log);
	if (!opened)
		return fail(kExitUsage, opened.error().message);
	EventLog &events = **opened;
	if (auto reason = kairos::vmm::kvm_unusable_reason(kairos::vmm::kKvmDevicePath); !reason.empty())
		return host_failure(events, reason);

	auto machine = kairos::vmm::Machine::create(*config, std::move(*prepared), log, events);
	if (!machine)
		return host_failure(events, machine.error().message);
	if (control)
		if (auto served = (*machine)->serve_control(*control); !served)
			return host_failure(events, served.error().message);
	log.info("booting {} on {} vCPU{} with {} MiB; kernel command line '{}'", config->boot.kernel.string(),
		 config->machine.vcpus, config->machine.vcpus == 1 ? "" : "s", config->machine.memory_mib,
		 config->boot.cmdline);
	events.emit(EventKind::Started, started_data(*config));
	kairos::UniqueFd stats_file;
	if (!stats_path.empty()) {
		auto opened_stats = open_stats_file(stats_path);
		if (!opened_stats)
			return host_failure(events, opened_stats.error().message);
		stats_file = std::move(*opened_stats);
	}
	// After setup, which needs far more system calls and rights than the
	// run does.
	auto confinement = kairos::vmm::Confinement::prepare(*config, (*machine)->kvm_descriptors());
	if (!confinement)
		return host_failure(events, confinement.error().message);
	auto result = (*machine)->run(*confinement);

	if (stats_file && !write_all(stats_file.get(), (*machine)->stats_json(result)))
		fmt::print(stderr, "kairos: could not write --stats {}: {}\n", stats_path, std::strerror(errno));
	std::string detail = result.detail.empty() ? "" : ": " + result.detail;
	std::string message = std::string(kairos::vmm::describe(result.reason)) + detail;
	return report_stop(events, result.reason, message, result.exit_code);
}

// With stdin, stdout or stderr closed (some CI runners and daemons start us
// so), the first file we open would take that number, and console input
// would read, say, the signalfd. Park /dev/null there first.
void open_missing_standard_fds()
{
	for (int fd = 0; fd <= 2; ++fd) {
		if (fcntl(fd, F_GETFD) == -1)
			open("/dev/null", O_RDWR);  // takes the lowest free number: fd
	}
}

}  // namespace

int main(int argc, char **argv)
{
	open_missing_standard_fds();
	auto line = kairos::vmm::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
	if (!line)
		return fail(kExitUsage, line.error().message);
	switch (line->command) {
	case CommandLine::Command::Help:
		fmt::print("{}", kUsage);
		return 0;
	case CommandLine::Command::Version:
		fmt::print("kairos {}\n", KAIROS_VERSION);
		return 0;
	case CommandLine::Command::Ctl:
		return kairos::vmm::ctl_command(line->ctl_words);
	default:
		break;
	}
	// Made once, before any thread, and never changed: every component
	// gets it by reference (base/logger.h).
	const kairos::Logger log(line->log_level);
	return line->command == CommandLine::Command::Run ? run_command(*line, log) : check_command(*line, log);
}
