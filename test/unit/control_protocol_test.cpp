#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "abi/kairos_abi.h"
#include "vmm/control_protocol.h"

using namespace kairos::vmm;

namespace {

std::string error_of(std::string_view line)
{
	auto request = parse_control_request(line);
	REQUIRE_FALSE(request.ok());
	return request.error().message;
}

}  // namespace

TEST_CASE("control: every command parses from its request line", "[control]")
{
	for (auto command :
	     {ControlCommand::Status, ControlCommand::Stats, ControlCommand::Pause, ControlCommand::Resume,
	      ControlCommand::Shutdown, ControlCommand::Quit, ControlCommand::Reset}) {
		std::string line = fmt::format("{{\"command\": \"{}\"}}", to_string(command));
		auto request = parse_control_request(line);
		REQUIRE(request.ok());
		CHECK(request->command == command);
	}
	auto raise = parse_control_request(R"({"command":"raise-event","port":511})");
	REQUIRE(raise.ok());
	CHECK(*raise == ControlRequest{ControlCommand::RaiseEvent, 511});
}

TEST_CASE("control: a bad request is one line naming the field at fault", "[control]")
{
	CHECK(error_of("status") ==
	      "invalid JSON: a request is one JSON object on one line, e.g. {\"command\": \"status\"}");
	CHECK(error_of("").starts_with("invalid JSON"));
	CHECK(error_of("[1,2]") == "a request must be a JSON object, got [1,2]");
	CHECK(error_of("{}") ==
	      "command: is required (status, stats, pause, resume, shutdown, quit, reset, raise-event)");
	CHECK(error_of(R"({"command": 3})") == "command: must be a string, got 3");
	CHECK(error_of(R"({"command": "frobnicate"})") ==
	      "command: unknown \"frobnicate\" (status, stats, pause, resume, shutdown, quit, reset, raise-event)");
	CHECK(error_of(R"({"command": "status", "port": 1})") == "\"port\": unknown key for status");
	CHECK(error_of(R"({"command": "raise-event", "prot": 1})") == "\"prot\": unknown key for raise-event");
	CHECK(error_of(R"({"command": "raise-event"})") == "port: is required for raise-event");
	CHECK(error_of(R"({"command": "raise-event", "port": 512})") == "port: must be an integer 0..511, got 512");
	CHECK(error_of(R"({"command": "raise-event", "port": -1})") == "port: must be an integer 0..511, got -1");
	CHECK(error_of(R"({"command": "raise-event", "port": "5"})") == "port: must be an integer 0..511, got \"5\"");
	CHECK(error_of(R"({"command": "raise-event", "port": 1.5})") == "port: must be an integer 0..511, got 1.5");
	CHECK(error_of(R"({"command": "raise-event", "port": 18446744073709551615})") ==
	      "port: must be an integer 0..511, got 18446744073709551615");
	// A long value is named by its type, so the error stays one short line.
	std::string long_name(1000, 'x');
	CHECK(error_of("{\"command\": \"" + long_name + "\"}") ==
	      "command: unknown string (status, stats, pause, resume, shutdown, quit, reset, raise-event)");
}

TEST_CASE("control: kairos ctl's words become the request it sends", "[control]")
{
	auto status = control_request_from_words({"status"});
	REQUIRE(status.ok());
	CHECK(format_control_request(*status) == "{\"command\":\"status\"}\n");
	auto raise = control_request_from_words({"raise-event", "7"});
	REQUIRE(raise.ok());
	CHECK(format_control_request(*raise) == "{\"command\":\"raise-event\",\"port\":7}\n");
	// What it sends parses back to the same request.
	std::string line = format_control_request(*raise);
	line.pop_back();
	auto parsed = parse_control_request(line);
	REQUIRE(parsed.ok());
	CHECK(*parsed == *raise);

	CHECK(control_request_from_words({}).error().message ==
	      "no command given (status, stats, pause, resume, shutdown, quit, reset, raise-event)");
	CHECK(control_request_from_words({"stop"}).error().message ==
	      "unknown command 'stop' (status, stats, pause, resume, shutdown, quit, reset, raise-event)");
	CHECK(control_request_from_words({"raise-event"}).error().message ==
	      "raise-event: needs a PORT, an integer 0..511");
	for (const char *bad : {"abc", "512", "-1", "", "5x", "99999999999"})
		CHECK(control_request_from_words({"raise-event", bad}).error().message ==
		      fmt::format("port: must be an integer 0..511, got '{}'", bad));
	CHECK(control_request_from_words({"status", "now"}).error().message ==
	      "unexpected argument 'now' after status");
}

TEST_CASE("control: replies are one JSON line each", "[control]")
{
	std::string ok = control_ok_reply({{"state", "paused"}});
	CHECK(ok == "{\"ok\":true,\"state\":\"paused\"}\n");
	CHECK(control_ok_reply() == "{\"ok\":true}\n");
	// A message with a newline and bytes that are not UTF-8 (a client's
	// garbage quoted back) still makes one valid line.
	std::string error = control_error_reply("bad\nline \xff");
	CHECK(error.find('\n') == error.size() - 1);
	auto parsed = nlohmann::json::parse(error);
	CHECK(parsed["ok"] == false);
	CHECK(parsed["error"].get<std::string>().starts_with("bad\nline "));
}

TEST_CASE("control: the line buffer cuts lines and bounds an unended one", "[control]")
{
	ControlLineBuffer buffer;
	buffer.append("{\"command\":");
	CHECK_FALSE(buffer.next_line());
	buffer.append("\"status\"}\r\n{\"command\":\"stats\"}\npartial");
	CHECK(buffer.next_line() == "{\"command\":\"status\"}");
	CHECK(buffer.next_line() == "{\"command\":\"stats\"}");
	CHECK_FALSE(buffer.next_line());
	CHECK_FALSE(buffer.overflowed());

	ControlLineBuffer exact;
	exact.append(std::string(kMaxControlLine, 'x'));
	CHECK_FALSE(exact.overflowed());
	exact.append("\n");
	CHECK(exact.next_line()->size() == kMaxControlLine);

	ControlLineBuffer endless;
	for (int i = 0; i < 100 && !endless.overflowed(); ++i)
		endless.append(std::string(4096, 'x'));
	CHECK(endless.overflowed());
	CHECK_FALSE(endless.next_line());

	// An over-long line that came in whole is refused too.
	ControlLineBuffer whole;
	whole.append(std::string(kMaxControlLine + 1, 'x') + "\n");
	CHECK_FALSE(whole.next_line());
	CHECK(whole.overflowed());
}
