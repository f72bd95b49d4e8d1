// base/logger: --log-level filtering and the line format.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "base/logger.h"

using kairos::Logger;
using kairos::LogLevel;

namespace {

struct Captured {
	std::vector<std::string> lines;
	Logger::Sink sink()
	{
		return [this](std::string_view line) { lines.emplace_back(line); };
	}
};

void say_everything(const Logger &log)
{
	log.error("e {}", 1);
	log.warn("w {}", 2);
	log.info("i {}", 3);
	log.debug("d {}", 4);
}

}  // namespace

TEST_CASE("logger: a level shows itself and everything more severe", "[logger]")
{
	auto shown_at = [](LogLevel level) {
		Captured captured;
		Logger log(level, captured.sink());
		say_everything(log);
		return captured.lines;
	};
	using Lines = std::vector<std::string>;
	CHECK(shown_at(LogLevel::Error) == Lines{"kairos: e 1"});
	CHECK(shown_at(LogLevel::Warn) == Lines{"kairos: e 1", "kairos: warning: w 2"});
	CHECK(shown_at(LogLevel::Info) == Lines{"kairos: e 1", "kairos: warning: w 2", "kairos: i 3"});
	CHECK(shown_at(LogLevel::Debug) ==
	      Lines{"kairos: e 1", "kairos: warning: w 2", "kairos: i 3", "kairos: debug: d 4"});
}

TEST_CASE("logger: the default is warn, as Kairos printed before --log-level", "[logger]")
{
	Captured captured;
	Logger log(kairos::kDefaultLogLevel, captured.sink());
	CHECK(log.level() == LogLevel::Warn);
	CHECK(log.shows(LogLevel::Error));
	CHECK(log.shows(LogLevel::Warn));
	CHECK_FALSE(log.shows(LogLevel::Info));
	log.write(LogLevel::Debug, "not shown");
	log.write(LogLevel::Error, "vCPU 0 state:\nRAX=0");
	CHECK(captured.lines == std::vector<std::string>{"kairos: vCPU 0 state:\nRAX=0"});
}

TEST_CASE("logger: levels are read and written by their --log-level names", "[logger]")
{
	for (auto level : {LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug}) {
		auto parsed = kairos::parse_log_level(kairos::to_string(level));
		REQUIRE(parsed.ok());
		CHECK(*parsed == level);
	}
	auto bad = kairos::parse_log_level("verbose");
	REQUIRE_FALSE(bad.ok());
	CHECK(bad.error().message == "must be error, warn, info or debug, got 'verbose'");
	CHECK_FALSE(kairos::parse_log_level("WARN").ok());
	CHECK_FALSE(kairos::parse_log_level("").ok());
}
