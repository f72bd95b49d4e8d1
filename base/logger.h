// Logger: Kairos's diagnostics on stderr ("kairos: warning: ..."), filtered
// by the level the user chose (kairos run --log-level).
//
// No process-wide state: main makes one Logger before any thread starts and
// hands it by const reference to what reports (Machine, the devices, the
// timer service). It never changes after construction, so every thread may
// use it without a lock; the sink is called once per line, and stderr's
// stdio lock keeps lines from different threads whole.
//
// What a command answers (a usage or config error, `check`'s result, the
// run's last line saying why it stopped) is not a diagnostic: main prints
// it whatever the level.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/result.h"

namespace kairos {

// Most to least severe: a level shows itself and everything above it.
enum class LogLevel { Error, Warn, Info, Debug };

// The default, as today's output and Firecracker's --level: problems only.
inline constexpr LogLevel kDefaultLogLevel = LogLevel::Warn;

// "error", "warn", "info" or "debug".
Result<LogLevel> parse_log_level(std::string_view text);
std::string_view to_string(LogLevel level);

class Logger {
public:
	// Receives each shown line, prefix included, without the newline.
	using Sink = std::function<void(std::string_view line)>;

	// The sink defaults to stderr.
	explicit Logger(LogLevel level = kDefaultLogLevel, Sink sink = {});
	Logger(const Logger &) = delete;
	Logger &operator=(const Logger &) = delete;

	LogLevel level() const { return level_; }
	bool shows(LogLevel level) const { return level <= level_; }

	template <typename... Args>
	void error(fmt::format_string<Args...> format, Args &&...args) const
	{
		log(LogLevel::Error, format, std::forward<Args>(args)...);
	}
	template <typename... Args>
	void warn(fmt::format_string<Args...> format, Args &&...args) const
	{
		log(LogLevel::Warn, format, std::forward<Args>(args)...);
	}
	template <typename... Args>
	void info(fmt::format_string<Args...> format, Args &&...args) const
	{
		log(LogLevel::Info, format, std::forward<Args>(args)...);
	}
	template <typename... Args>
	void debug(fmt::format_string<Args...> format, Args &&...args) const
	{
		log(LogLevel::Debug, format, std::forward<Args>(args)...);
	}

	// One message (without "kairos: " or a newline), if `level` is shown.
	void write(LogLevel level, std::string_view message) const;

private:
	// Formats only what is shown: a debug line costs nothing at warn.
	template <typename... Args>
	void log(LogLevel level, fmt::format_string<Args...> format, Args &&...args) const
	{
		if (shows(level))
			write(level, fmt::format(format, std::forward<Args>(args)...));
	}

	LogLevel level_;
	Sink sink_;
};

}  // namespace kairos
