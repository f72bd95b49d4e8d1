// vmm/cli: the command line read into a CommandLine, every mistake one
// line that names the flag or word (issue 11).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "vmm/cli.h"

using kairos::vmm::CommandLine;
using kairos::vmm::parse_command_line;
using Command = CommandLine::Command;

namespace {

std::string error_of(const std::vector<std::string> &args)
{
	auto line = parse_command_line(args);
	REQUIRE_FALSE(line.ok());
	CHECK(line.error().message.find('\n') == std::string::npos);
	return line.error().message;
}

}  // namespace

TEST_CASE("cli: a config file alone, as before", "[cli]")
{
	auto line = parse_command_line({"run", "vm.json", "--stats", "s.json"});
	REQUIRE(line.ok());
	CHECK(line->command == Command::Run);
	CHECK(line->config_file == std::filesystem::path("vm.json"));
	CHECK(line->stats_path == "s.json");
	CHECK(line->log_level == kairos::kDefaultLogLevel);
	CHECK_FALSE(line->flags.kernel);
}

TEST_CASE("cli: the VM from flags alone, in any order, with or without '='", "[cli]")
{
	auto line = parse_command_line({"run", "--cpus", "2", "--kernel", "bzImage", "--initrd=init.cpio",
					"--memory=512", "--append", "console=ttyS0 quiet", "--log-level", "debug"});
	REQUIRE(line.ok());
	CHECK_FALSE(line->config_file);
	CHECK(line->flags.kernel == "bzImage");
	CHECK(line->flags.initrd == "init.cpio");
	CHECK(line->flags.cmdline == "console=ttyS0 quiet");
	CHECK(line->flags.vcpus == 2);
	CHECK(line->flags.memory_mib == 512);
	CHECK(line->log_level == kairos::LogLevel::Debug);

	// A config file and flags together; the last of a repeated flag wins.
	auto both = parse_command_line({"check", "--cpus", "2", "vm.json", "--cpus", "3", "--append="});
	REQUIRE(both.ok());
	CHECK(both->command == Command::Check);
	CHECK(both->config_file == std::filesystem::path("vm.json"));
	CHECK(both->flags.vcpus == 3);
	CHECK(both->flags.cmdline == "");
}

TEST_CASE("cli: a bad flag value is one line naming the flag", "[cli]")
{
	CHECK(error_of({"run", "--kernel", "k", "--cpus", "abc"}) == "--cpus: must be an integer, got 'abc'");
	CHECK(error_of({"run", "--kernel", "k", "--cpus", "2x"}) == "--cpus: must be an integer, got '2x'");
	CHECK(error_of({"run", "--kernel", "k", "--memory", ""}) == "--memory: must be an integer, got ''");
	CHECK(error_of({"run", "--kernel", "k", "--memory", "1.5"}) == "--memory: must be an integer, got '1.5'");
	CHECK(error_of({"run", "--kernel", "k", "--log-level", "loud"}) ==
	      "--log-level: must be error, warn, info or debug, got 'loud'");
	CHECK(error_of({"run", "--kernel", "k", "--cpus"}) == "--cpus: needs a number of vCPUs");
	CHECK(error_of({"run", "--kernel"}) == "--kernel: needs a file name");
	CHECK(error_of({"run", "--kernel", "k", "--stats", ""}) == "--stats: needs a file name");
}

TEST_CASE("cli: usage mistakes name the word and point at --help", "[cli]")
{
	CHECK(error_of({}) == "no command given; see 'kairos --help'");
	CHECK(error_of({"frobnicate"}) == "unknown command 'frobnicate'; see 'kairos --help'");
	CHECK(error_of({"run", "vm.json", "--cpu", "2"}) == "unknown option '--cpu' for run; see 'kairos --help'");
	CHECK(error_of({"check", "vm.json", "--stats", "s.json"}) ==
	      "unknown option '--stats' for check; see 'kairos --help'");
	CHECK(error_of({"run", "a.json", "b.json"}) == "unexpected argument 'b.json': one config file at most");
	CHECK(error_of({"run"}) == "run needs a CONFIG.json or --kernel FILE; see 'kairos --help'");
	CHECK(error_of({"check", "--cpus", "2"}) == "check needs a CONFIG.json or --kernel FILE; see 'kairos --help'");
}

TEST_CASE("cli: --help and --version win wherever they are", "[cli]")
{
	for (auto args : std::vector<std::vector<std::string>>{
		     {"--help"}, {"-h"}, {"help"}, {"run", "--help"}, {"check", "vm.json", "-h"}}) {
		auto line = parse_command_line(args);
		REQUIRE(line.ok());
		CHECK(line->command == Command::Help);
	}
	for (auto args : std::vector<std::vector<std::string>>{{"--version"}, {"-V"}, {"version"}, {"run", "-V"}}) {
		auto line = parse_command_line(args);
		REQUIRE(line.ok());
		CHECK(line->command == Command::Version);
	}
}

TEST_CASE("cli: run --api-sock, and ctl's words passed on as they are", "[cli]")
{
	auto run = parse_command_line({"run", "vm.json", "--api-sock", "/run/vm.sock"});
	REQUIRE(run.ok());
	CHECK(run->api_socket_path == "/run/vm.sock");
	CHECK(error_of({"run", "vm.json", "--api-sock="}) ==
	      "--api-sock: needs a file name (the control socket to create)");
	CHECK(error_of({"check", "vm.json", "--api-sock", "s"}) ==
	      "unknown option '--api-sock' for check; see 'kairos --help'");

	// kairos ctl checks its own words (vmm/ctl.h), --help included.
	auto ctl = parse_command_line({"ctl", "/run/vm.sock", "raise-event", "5"});
	REQUIRE(ctl.ok());
	CHECK(ctl->command == Command::Ctl);
	CHECK(ctl->ctl_words == std::vector<std::string>{"/run/vm.sock", "raise-event", "5"});
	auto help = parse_command_line({"ctl", "--help"});
	REQUIRE(help.ok());
	CHECK(help->command == Command::Ctl);
}
