#include <catch2/catch.hpp>

#include "outsourcing/priority.h"

using namespace kairos::outsourcing;

TEST_CASE("parse_priority accepts normal, nice:-N and fifo:N", "[outsourcing][priority]")
{
	auto check = [](const std::string &text, Priority expected) {
		INFO(text);
		auto parsed = parse_priority(text);
		REQUIRE(parsed.ok());
		CHECK(parsed.value() == expected);
		CHECK(to_string(parsed.value()) == text);
	};
	check("normal", Priority{});
	check("nice:-1", {Priority::Policy::Nice, -1});
	check("nice:-20", {Priority::Policy::Nice, -20});
	check("fifo:1", {Priority::Policy::Fifo, 1});
	check("fifo:50", {Priority::Policy::Fifo, 50});
	check("fifo:99", {Priority::Policy::Fifo, 99});
}

TEST_CASE("parse_priority refuses anything else, saying what it expected", "[outsourcing][priority]")
{
	for (const char *text : {"", "x", "Normal", "normal ", "rt", "fifo", "fifo:", "fifo:x", "fifo:5x", "fifo: 5",
				 "fifo:+5", "nice", "nice:", "nice:-", "nice:-x", "nice:5", "nice:--5", "batch:1"}) {
		INFO('"' << text << '"');
		auto parsed = parse_priority(text);
		REQUIRE_FALSE(parsed.ok());
		CHECK_THAT(parsed.error().message, Catch::StartsWith("outsourcing.priority: "));
		CHECK_THAT(parsed.error().message, Catch::Contains(std::string("got \"") + text + "\""));
	}
	CHECK(parse_priority("x").error().message ==
	      "outsourcing.priority: expected normal, nice:-N or fifo:N, got \"x\"");
}

TEST_CASE("parse_priority refuses values out of range", "[outsourcing][priority]")
{
	for (const char *text :
	     {"nice:-0", "nice:-21", "nice:-100", "nice:-1000", "fifo:0", "fifo:100", "fifo:-5", "fifo:99999999999"}) {
		INFO(text);
		auto parsed = parse_priority(text);
		REQUIRE_FALSE(parsed.ok());
		CHECK_THAT(parsed.error().message, Catch::Contains("from 1 to"));
	}
}

TEST_CASE("normal priority applies trivially", "[outsourcing][priority]")
{
	CHECK(apply_priority_to_this_thread(Priority{}).ok());
}
