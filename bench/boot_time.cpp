// boot-time runner: boots each candidate VMM N times and reports the time
// from process start to the guest's /init (its first "KAIROS-GUEST" line)
// and to the process exit (guest power-off), as a table and JSON, with
// ratios against the first candidate. Asserts nothing about time.
//
// usage: boot-time-runner [--runs N] [--json FILE] LABEL=COMMAND...
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char *kInitMarker = "KAIROS-GUEST ";
constexpr int kRunTimeoutSeconds = 300;

struct Candidate {
	std::string label;
	std::string command;
	std::vector<double> to_init_ms;
	std::vector<double> to_exit_ms;
	int failures = 0;
	std::vector<std::string> failure_reasons;  // one per failed run
};

struct Run {
	bool ok = false;
	double to_init_ms = -1;
	double to_exit_ms = -1;
	std::string failure;  // why not ok: how it ended and its last line
};

double elapsed_ms(Clock::time_point since)
{
	return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// The last non-empty line of output, without its newline.
std::string last_line(const std::string &output)
{
	size_t end = output.find_last_not_of("\r\n");
	if (end == std::string::npos)
		return "";
	size_t newline = output.find_last_of('\n', end);
	size_t begin = newline == std::string::npos ? 0 : newline + 1;
	return output.substr(begin, end + 1 - begin);
}

// Why a run is not counted: how the process ended, and what it said last
// (a VMM's own reason, such as "kairos: guest triple fault: ...").
std::string failure_of(int status, bool timed_out, bool reached_init, const std::string &output)
{
	std::string ended;
	if (timed_out)
		ended = fmt::format("killed after {} s", kRunTimeoutSeconds);
	else if (WIFSIGNALED(status))
		ended = fmt::format("killed by signal {}", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		ended = fmt::format("exit {}", WEXITSTATUS(status));
	else if (!reached_init)
		ended = "exit 0 without a KAIROS-GUEST line";
	else
		return "";
	std::string line = last_line(output);
	return line.empty() ? ended : ended + ": " + line;
}

// Runs `command` with sh -c, its stdout (and stderr) on a pipe we scan.
Run run_once(const std::string &command)
{
	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		return {};
	auto start = Clock::now();
	pid_t child = fork();
	if (child == 0) {
		dup2(pipe_fds[1], STDOUT_FILENO);
		dup2(pipe_fds[1], STDERR_FILENO);
		int null_fd = open("/dev/null", O_RDONLY);
		dup2(null_fd, STDIN_FILENO);
		execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char *>(nullptr));
		_exit(127);
	}
	close(pipe_fds[1]);
	Run run;
	std::string seen;
	std::string tail;  // the output's last few KiB, for a failure's reason
	bool timed_out = false;
	char buffer[4096];
	while (true) {
		pollfd pfd{pipe_fds[0], POLLIN, 0};
		if (poll(&pfd, 1, 1000) == 0) {
			if (elapsed_ms(start) > kRunTimeoutSeconds * 1000.0) {
				kill(child, SIGKILL);
				timed_out = true;
				break;
			}
			continue;
		}
		ssize_t got = read(pipe_fds[0], buffer, sizeof(buffer));
		if (got <= 0)
			break;
		tail.append(buffer, static_cast<size_t>(got));
		if (tail.size() > 8192)
			tail.erase(0, tail.size() - 4096);
		if (run.to_init_ms < 0) {
			seen.append(buffer, static_cast<size_t>(got));
			if (seen.find(kInitMarker) != std::string::npos)
				run.to_init_ms = elapsed_ms(start);
			if (seen.size() > 65536)
				seen.erase(0, seen.size() - 64);
		}
	}
	close(pipe_fds[0]);
	int status = 0;
	waitpid(child, &status, 0);
	run.to_exit_ms = elapsed_ms(start);
	run.failure = failure_of(status, timed_out, run.to_init_ms >= 0, tail);
	run.ok = run.failure.empty();
	return run;
}

double median(std::vector<double> values)
{
	if (values.empty())
		return 0;
	std::sort(values.begin(), values.end());
	size_t mid = values.size() / 2;
	return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

int usage()
{
	fmt::print(stderr, "usage: boot-time-runner [--runs N] [--json FILE] LABEL=COMMAND...\n");
	return 2;
}

}  // namespace

int main(int argc, char **argv)
{
	int runs = 5;
	std::string json_path;
	std::vector<Candidate> candidates;
	for (int i = 1; i < argc; ++i) {
		std::string arg = argv[i];
		if (arg == "--runs" && i + 1 < argc) {
			runs = std::atoi(argv[++i]);
		} else if (arg == "--json" && i + 1 < argc) {
			json_path = argv[++i];
		} else if (auto eq = arg.find('='); eq != std::string::npos && eq > 0) {
			candidates.push_back({arg.substr(0, eq), arg.substr(eq + 1), {}, {}, 0, {}});
		} else {
			return usage();
		}
	}
	if (candidates.empty() || runs < 1)
		return usage();

	// Interleave candidates run by run, so slow drift in the machine's speed
	// affects them alike.
	for (int run = 1; run <= runs; ++run) {
		for (auto &candidate : candidates) {
			Run result = run_once(candidate.command);
			fmt::print(stderr, "boot-time: run {}/{} {}: {}\n", run, runs, candidate.label,
				   result.ok ? fmt::format("init {:.0f} ms, exit {:.0f} ms", result.to_init_ms,
							   result.to_exit_ms)
					     : "FAILED (" + result.failure + ")");
			if (!result.ok) {
				++candidate.failures;
				candidate.failure_reasons.push_back(result.failure);
				continue;
			}
			candidate.to_init_ms.push_back(result.to_init_ms);
			candidate.to_exit_ms.push_back(result.to_exit_ms);
		}
	}

	const double base_init = median(candidates.front().to_init_ms);
	const double base_exit = median(candidates.front().to_exit_ms);
	nlohmann::json json = {
		{"runs", runs}, {"baseline", candidates.front().label}, {"candidates", nlohmann::json::array()}};
	fmt::print("\n{:<22} {:>6} {:>16} {:>16} {:>14} {:>14}\n", "vmm", "ok", "to /init (ms)", "to exit (ms)",
		   "init ratio", "exit ratio");
	for (const auto &candidate : candidates) {
		double init = median(candidate.to_init_ms);
		double exit = median(candidate.to_exit_ms);
		double init_ratio = base_init > 0 ? init / base_init : 0;
		double exit_ratio = base_exit > 0 ? exit / base_exit : 0;
		fmt::print("{:<22} {:>3}/{:<2} {:>16.0f} {:>16.0f} {:>14.2f} {:>14.2f}\n", candidate.label,
			   candidate.to_init_ms.size(), runs, init, exit, init_ratio, exit_ratio);
		json["candidates"].push_back({{"label", candidate.label},
					      {"command", candidate.command},
					      {"successful_runs", candidate.to_init_ms.size()},
					      {"failures", candidate.failures},
					      {"failure_reasons", candidate.failure_reasons},
					      {"to_init_ms", candidate.to_init_ms},
					      {"to_exit_ms", candidate.to_exit_ms},
					      {"median_to_init_ms", init},
					      {"median_to_exit_ms", exit},
					      {"init_ratio_vs_baseline", init_ratio},
					      {"exit_ratio_vs_baseline", exit_ratio}});
	}
	fmt::print("(ratios: median / median of {}; lower is faster)\n", candidates.front().label);
	std::string text = json.dump(2) + "\n";
	if (!json_path.empty())
		std::ofstream(json_path) << text;
	else
		fmt::print("{}", text);
	bool all_failed = std::all_of(candidates.begin(), candidates.end(),
				      [](const Candidate &c) { return c.to_init_ms.empty(); });
	return all_failed ? 1 : 0;
}
