// The command line of `kairos`: the command, its config file and its
// flags, read without acting on any of them, so that main only dispatches.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/logger.h"
#include "base/result.h"
#include "vmm/config.h"

namespace kairos::vmm {

struct CommandLine {
	enum class Command { Help, Version, Run, Check, Ctl };
	Command command = Command::Help;
	std::optional<std::filesystem::path> config_file;  // none: defaults and flags only
	std::string stats_path;                            // run --stats; empty: none
	std::string events_path;                           // run --events; empty: none
	std::string api_socket_path;                       // run --api-sock; empty: none
	std::vector<std::string> ctl_words;                // ctl: the words after "ctl" (vmm/ctl.h)
	LogLevel log_level = kDefaultLogLevel;             // --log-level
	ConfigFlags flags;                                 // --kernel, --cpus, ...
};

// The words after the program name. An error is one line that names the
// flag or word at fault ("--cpus: must be an integer, got 'abc'"); the
// caller exits 2. Flag values are checked here only as far as their form
// goes: ranges and files are the config's to check (load_config), so the
// file and the flags are held to the same rules.
Result<CommandLine> parse_command_line(const std::vector<std::string> &args);

}  // namespace kairos::vmm
