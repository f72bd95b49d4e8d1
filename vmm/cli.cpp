#include "vmm/cli.h"

#include <charconv>
#include <string_view>

#include "base/error.h"

namespace kairos::vmm {
namespace {

// One word of the command line, or "--flag=value" split in two.
struct Option {
	std::string name;
	std::optional<std::string> inline_value;
};

Option split_option(const std::string &word)
{
	size_t equals = word.find('=');
	if (!word.starts_with("--") || equals == std::string::npos)
		return {word, std::nullopt};
	return {word.substr(0, equals), word.substr(equals + 1)};
}

Result<int64_t> integer_of(const std::string &flag, const std::string &text)
{
	int64_t value = 0;
	auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (error != std::errc{} || end != text.data() + text.size() || text.empty())
		return make_error("{}: must be an integer, got '{}'", flag, text);
	return value;
}

// Reads one known option of run or check, with its value, into `line`.
Status apply_flag(const std::string &flag, const std::string &value, CommandLine &line)
{
	ConfigFlags &flags = line.flags;
	if (flag == "--kernel") {
		flags.kernel = value;
	} else if (flag == "--initrd") {
		flags.initrd = value;
	} else if (flag == "--append") {
		flags.cmdline = value;
	} else if (flag == "--cpus" || flag == "--memory") {
		KAIROS_TRY_ASSIGN(number, integer_of(flag, value));
		(flag == "--cpus" ? flags.vcpus : flags.memory_mib) = number;
	} else if (flag == "--log-level") {
		auto level = parse_log_level(value);
		if (!level)
			return make_error("--log-level: {}", level.error().message);
		line.log_level = *level;
	} else if (flag == "--stats") {
		if (value.empty())
			return make_error("--stats: needs a file name");
		line.stats_path = value;
	} else if (flag == "--events") {
		// stdout carries the guest console: the two would interleave.
		if (value.empty() || value == "-")
			return make_error("--events: needs a file name (stdout is the guest's console; "
					  "follow the file with tail -f)");
		line.events_path = value;
	} else if (flag == "--api-sock") {
		if (value.empty())
			return make_error("--api-sock: needs a file name (the control socket to create)");
		line.api_socket_path = value;
	}
	return {};
}

// Every option of run and check takes a value; --stats, --events and
// --api-sock are run's alone.
bool known_option(const std::string &flag, CommandLine::Command command)
{
	static constexpr std::string_view kFlags[] = {"--kernel", "--initrd", "--append",
						      "--cpus",   "--memory", "--log-level"};
	for (std::string_view known : kFlags)
		if (flag == known)
			return true;
	return (flag == "--stats" || flag == "--events" || flag == "--api-sock") &&
	       command == CommandLine::Command::Run;
}

// What a flag's value looks like, for "needs a value" errors.
const char *value_name(const std::string &flag)
{
	if (flag == "--cpus")
		return "a number of vCPUs";
	if (flag == "--memory")
		return "a size in MiB";
	if (flag == "--append")
		return "a kernel command line";
	if (flag == "--log-level")
		return "error, warn, info or debug";
	return "a file name";
}

}  // namespace

Result<CommandLine> parse_command_line(const std::vector<std::string> &args)
{
	using Command = CommandLine::Command;
	CommandLine line;
	if (args.empty())
		return make_error("no command given; see 'kairos --help'");
	const std::string &command = args[0];
	if (command == "--help" || command == "-h" || command == "help")
		return line;
	// As other tools take it: `kairos --version`, `-V` or `version`.
	if (command == "--version" || command == "-V" || command == "version") {
		line.command = Command::Version;
		return line;
	}
	// ctl reads its own words (vmm/ctl.h).
	if (command == "ctl") {
		line.command = Command::Ctl;
		line.ctl_words.assign(args.begin() + 1, args.end());
		return line;
	}
	if (command != "run" && command != "check")
		return make_error("unknown command '{}'; see 'kairos --help'", command);
	line.command = command == "run" ? Command::Run : Command::Check;

	for (size_t i = 1; i < args.size(); ++i) {
		const std::string &word = args[i];
		if (word == "--help" || word == "-h") {
			line.command = Command::Help;
			return line;
		}
		if (word == "--version" || word == "-V") {
			line.command = Command::Version;
			return line;
		}
		if (word.empty() || word[0] != '-') {
			if (line.config_file)
				return make_error("unexpected argument '{}': one config file at most", word);
			line.config_file = word;
			continue;
		}
		Option option = split_option(word);
		if (!known_option(option.name, line.command))
			return make_error("unknown option '{}' for {}; see 'kairos --help'", option.name, command);
		if (!option.inline_value && i + 1 >= args.size())
			return make_error("{}: needs {}", option.name, value_name(option.name));
		std::string value = option.inline_value ? *option.inline_value : args[++i];
		KAIROS_TRY(apply_flag(option.name, value, line));
	}
	if (!line.config_file && !line.flags.kernel)
		return make_error("{} needs a CONFIG.json or --kernel FILE; see 'kairos --help'", command);
	return line;
}

}  // namespace kairos::vmm
