#include "base/logger.h"

#include <cstdio>

#include "base/error.h"

namespace kairos {
namespace {

constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};

// A warning says it is one, as today's memory warning did; an error line
// already reads as one, and info and debug lines are plain reports.
std::string_view tag_of(LogLevel level)
{
	switch (level) {
	case LogLevel::Warn:
		return "warning: ";
	case LogLevel::Debug:
		return "debug: ";
	default:
		return "";
	}
}

}  // namespace

Result<LogLevel> parse_log_level(std::string_view text)
{
	for (size_t i = 0; i < std::size(kNames); ++i)
		if (text == kNames[i])
			return static_cast<LogLevel>(i);
	return make_error("must be error, warn, info or debug, got '{}'", text);
}

std::string_view to_string(LogLevel level)
{
	return kNames[static_cast<size_t>(level)];
}

Logger::Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink))
{
	if (!sink_)
		sink_ = [](std::string_view line) {
			// One fwrite per line: stderr's lock keeps it whole among threads.
			std::string text = std::string(line) + "\n";
			std::fwrite(text.data(), 1, text.size(), stderr);
		};
}

void Logger::write(LogLevel level, std::string_view message) const
{
	if (!shows(level))
		return;
	sink_(fmt::format("kairos: {}{}", tag_of(level), message));
}

}  // namespace kairos
