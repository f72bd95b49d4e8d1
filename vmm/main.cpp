// kairos: the command-line front end.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "vmm/config.h"
#include "vmm/confinement.h"
#include "vmm/guest_loader.h"
#include "vmm/host_memory.h"
#include "vmm/kvm.h"
#include "vmm/machine.h"
#include "vmm/preflight.h"
#include "vmm/stop_sources.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitHostError = 1;

constexpr const char *kUsage = R"(usage: kairos COMMAND [OPTIONS]

Kairos: a KVM virtual machine monitor that keeps guest time accurate on a
loaded host.

commands:
  run CONFIG.json [--stats FILE]   boot the VM described by CONFIG.json
  check CONFIG.json                validate CONFIG.json and exit
  --help, -h                       show this help
  --version, -V, version           show the version (also after run/check)

options:
  --stats FILE   write per-VM statistics (JSON) to FILE when the VM stops

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

int fail(int code, const std::string &message)
{
	fmt::print(stderr, "kairos: {}\n", message);
	return code;
}

int usage_error(const std::string &message)
{
	fmt::print(stderr, "kairos: {}\nTry 'kairos --help'.\n", message);
	return kExitUsage;
}

// As other tools take it: `kairos --version`, `-V` or `version`.
bool is_version_request(const std::string &word)
{
	return word == "--version" || word == "-V" || word == "version";
}

int check_command(const std::string &config_path, const kairos::Logger &log)
{
	auto config = kairos::vmm::load_config(config_path);
	if (!config)
		return fail(kExitUsage, config.error().message);
	if (auto ready = kairos::vmm::preflight(*config); !ready)
		return fail(kExitUsage, ready.error().message);
	if (auto memory = kairos::vmm::check_host_memory(*config, log); !memory)
		return fail(kExitHostError, memory.error().message);
	fmt::print("{}: ok ({} vCPU{}, {} MiB)\n", config_path, config->machine.vcpus,
		   config->machine.vcpus == 1 ? "" : "s", config->machine.memory_mib);
	// What Kairos appends to the guest's command line, so its length is no surprise.
	std::string added = kairos::vmm::cmdline_additions(*config, kairos::vmm::kLongestTscKhz);
	if (!added.empty())
		fmt::print("  kernel command line: {} bytes of boot.cmdline, and up to {} that Kairos adds "
			   "(' tsc_early_khz=' and the TSC rate, because clock.kvmclock is false)\n",
			   config->boot.cmdline.size(), added.size());
	return 0;
}

int run_command(const std::string &config_path, const std::string &stats_path, const kairos::Logger &log)
{
	// A stop signal during setup waits for the loop, which stops the VM
	// the one way (stats, last line) instead of the signal killing us.
	if (auto blocked = kairos::vmm::block_stop_signals(); !blocked)
		return fail(kExitHostError, blocked.error().message);
	// A console reader that goes away (kairos run | head) must not kill
	// the VMM: its writes fail with EPIPE, and the guest runs on.
	signal(SIGPIPE, SIG_IGN);
	auto config = kairos::vmm::load_config(config_path);
	if (!config)
		return fail(kExitUsage, config.error().message);
	// Found before KVM is touched: a config error is exit 2, whatever the host.
	if (auto ready = kairos::vmm::preflight(*config); !ready)
		return fail(kExitUsage, ready.error().message);
	kairos::Status stats_writable =
		stats_path.empty() ? kairos::Status{} : kairos::vmm::check_writable_path(stats_path, "--stats");
	if (!stats_writable)
		return fail(kExitUsage, stats_writable.error().message);
	if (auto memory = kairos::vmm::check_host_memory(*config, log); !memory)
		return fail(kExitHostError, memory.error().message);
	if (auto reason = kairos::vmm::kvm_unusable_reason("/dev/kvm"); !reason.empty())
		return fail(kExitHostError, reason);

	auto machine = kairos::vmm::Machine::create(*config, log);
	if (!machine)
		return fail(kExitHostError, machine.error().message);
	// After setup, which needs far more system calls than the run does.
	auto confinement = kairos::vmm::Confinement::prepare(*config);
	if (!confinement)
		return fail(kExitHostError, confinement.error().message);
	auto result = (*machine)->run(*confinement);

	if (!stats_path.empty()) {
		std::ofstream out(stats_path);
		out << (*machine)->stats_json(result);
		if (!out)
			fmt::print(stderr, "kairos: could not write --stats {}\n", stats_path);
	}
	std::string detail = result.detail.empty() ? "" : ": " + result.detail;
	fmt::print(stderr, "kairos: {}{} (exit {})\n", kairos::vmm::describe(result.reason), detail, result.exit_code);
	return result.exit_code;
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
	std::vector<std::string> args(argv + 1, argv + argc);
	if (args.empty())
		return usage_error("no command given");
	const std::string &command = args[0];
	if (command == "--help" || command == "-h" || command == "help") {
		fmt::print("{}", kUsage);
		return 0;
	}
	if (is_version_request(command)) {
		fmt::print("kairos {}\n", KAIROS_VERSION);
		return 0;
	}
	if (command != "run" && command != "check")
		return usage_error(fmt::format("unknown command '{}'", command));

	std::string config_path;
	std::string stats_path;
	for (size_t i = 1; i < args.size(); ++i) {
		if (args[i] == "--help" || args[i] == "-h") {
			fmt::print("{}", kUsage);
			return 0;
		}
		if (args[i] == "--version" || args[i] == "-V") {
			fmt::print("kairos {}\n", KAIROS_VERSION);
			return 0;
		}
		if (args[i] == "--stats" && command == "run") {
			if (i + 1 >= args.size())
				return usage_error("--stats needs a file name");
			stats_path = args[++i];
		} else if (!args[i].empty() && args[i][0] == '-') {
			return usage_error(fmt::format("unknown option '{}' for {}", args[i], command));
		} else if (config_path.empty()) {
			config_path = args[i];
		} else {
			return usage_error(fmt::format("unexpected argument '{}'", args[i]));
		}
	}
	if (config_path.empty())
		return usage_error(fmt::format("{} needs a CONFIG.json", command));
	// Made once, before any thread, and never changed: every component
	// gets it by reference (base/logger.h).
	const kairos::Logger log;
	return command == "run" ? run_command(config_path, stats_path, log) : check_command(config_path, log);
}
