// kairos run --events: the line format, the bounded queue and the rate
// limit (vmm/event_log.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/unit/event_file.h"
#include "test/unit/test_log.h"
#include "vmm/event_log.h"
#include "vmm/preflight.h"

using namespace kairos;
using namespace kairos::vmm;

TEST_CASE("an event line is one JSON object with the fixed fields first", "[event-log]")
{
	EventTime at{5'123'456'789ULL, 1'796'568'149'123'456'789ULL};
	std::string line =
		format_event_line(EventKind::RingRegistered, {{"gpa", 0x500000}, {"pages", 4}}, at, 2'000'000'000ULL);
	CHECK(line.find('\n') == std::string::npos);
	CHECK(line.rfind(R"({"event":"ring-registered","time":")", 0) == 0);
	auto parsed = nlohmann::json::parse(line);
	CHECK(parsed["event"] == "ring-registered");
	CHECK(parsed["time"] == "2026-12-06T14:42:29.123456Z");
	CHECK(parsed["monotonic_ns"] == 5'123'456'789ULL);
	CHECK(parsed["elapsed_ns"] == 3'123'456'789ULL);
	CHECK(parsed["data"] == nlohmann::json({{"gpa", 0x500000}, {"pages", 4}}));
}

TEST_CASE("event text is escaped, and bytes that are not UTF-8 cannot break the line", "[event-log]")
{
	std::string reason = "a \"quoted\"\nline\\ with \xff";
	std::string line = format_event_line(EventKind::TimerThreadFailed, {{"reason", reason}}, {1, 0}, 0);
	CHECK(line.find('\n') == std::string::npos);
	auto parsed = nlohmann::json::parse(line);
	CHECK(parsed["data"]["reason"].get<std::string>().starts_with("a \"quoted\"\nline\\ with "));
	CHECK(parsed["time"] == "1970-01-01T00:00:00.000000Z");
	CHECK(parsed["elapsed_ns"] == 1);
}

TEST_CASE("every kind has its own name", "[event-log]")
{
	std::vector<std::string_view> names;
	for (size_t kind = 0; kind < kEventKinds; ++kind)
		names.push_back(to_string(static_cast<EventKind>(kind)));
	CHECK(names.front() == "started");
	CHECK(names.back() == "stopped");
	std::sort(names.begin(), names.end());
	CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
	CHECK(std::find(names.begin(), names.end(), "unknown") == names.end());
}

TEST_CASE("the rate limit lets a burst through per kind, then one per refill", "[event-log]")
{
	EventRateLimit limit;
	uint64_t now = 1'000'000'000ULL;
	for (uint32_t i = 0; i < EventRateLimit::kBurst; ++i)
		REQUIRE(limit.allow(EventKind::RingRegistered, now));
	CHECK_FALSE(limit.allow(EventKind::RingRegistered, now));
	// Other kinds have their own bucket.
	CHECK(limit.allow(EventKind::SharedInfoRegistered, now));
	// One refill period earns one event, not more.
	now += EventRateLimit::kRefillNs - 1;
	CHECK_FALSE(limit.allow(EventKind::RingRegistered, now));
	now += 1;
	CHECK(limit.allow(EventKind::RingRegistered, now));
	CHECK_FALSE(limit.allow(EventKind::RingRegistered, now));
	// A long quiet spell refills the bucket, but only to the burst.
	now += 1000 * EventRateLimit::kRefillNs;
	for (uint32_t i = 0; i < EventRateLimit::kBurst; ++i)
		REQUIRE(limit.allow(EventKind::RingRegistered, now));
	CHECK_FALSE(limit.allow(EventKind::RingRegistered, now));
	// A clock that went back earns nothing.
	CHECK_FALSE(limit.allow(EventKind::RingRegistered, now - EventRateLimit::kRefillNs));
}

TEST_CASE("events are written in order, one valid JSON object per line", "[event-log]")
{
	EventFile file;
	auto log = file.open(test_log());
	log->emit(EventKind::Started, {{"vcpus", 2}});
	log->emit(EventKind::SharedInfoRegistered, {{"gpa", 4096}});
	CHECK(file.text_lines().empty());  // nothing written before the loop (or main) flushes
	log->flush();
	log->emit(EventKind::Stopped, {{"reason", "power-off"}, {"exit_code", 0}});
	log->flush();
	auto lines = file.lines();
	REQUIRE(lines.size() == 3);
	CHECK(lines[0]["event"] == "started");
	CHECK(lines[0]["data"]["vcpus"] == 2);
	CHECK(lines[1]["event"] == "shared-info-registered");
	CHECK(lines[2]["event"] == "stopped");
	CHECK(lines[0]["monotonic_ns"] <= lines[1]["monotonic_ns"]);
	CHECK(lines[1]["monotonic_ns"] <= lines[2]["monotonic_ns"]);
	CHECK(log->dropped() == 0);
}

TEST_CASE("a full queue drops and counts, without blocking, and the stop line still goes", "[event-log]")
{
	EventFile file;
	auto log = file.open(test_log());
	// Nobody flushes: a stuck loop. Spread over kinds so that the rate
	// limit is not what refuses them.
	size_t emitted = 0;
	for (size_t kind = 0; kind + 1 < kEventKinds; ++kind) {
		for (uint32_t i = 0; i < EventRateLimit::kBurst; ++i, ++emitted)
			log->emit(static_cast<EventKind>(kind));
	}
	REQUIRE(emitted > EventLog::kQueueLines);
	CHECK(log->dropped() == emitted - EventLog::kQueueLines);
	log->emit(EventKind::Stopped, {{"events_dropped", log->dropped()}});
	log->flush();
	auto lines = file.lines();
	REQUIRE(lines.size() == EventLog::kQueueLines + 1);
	CHECK(lines.back()["event"] == "stopped");
	CHECK(lines.back()["data"]["events_dropped"] == emitted - EventLog::kQueueLines);
}

TEST_CASE("a guest that repeats an event is rate-limited and counted per kind", "[event-log]")
{
	EventFile file;
	auto log = file.open(test_log());
	for (int i = 0; i < 1000; ++i) {
		log->emit(EventKind::RingRegistered);
		if (i % 100 == 0)
			log->flush();  // a loop that keeps up: only the limit drops
	}
	log->emit(EventKind::GuestPanic, {{"source", "console"}});
	log->flush();
	CHECK(log->dropped(EventKind::RingRegistered) == 1000 - EventRateLimit::kBurst);
	CHECK(log->dropped(EventKind::GuestPanic) == 0);
	CHECK(log->dropped_json() == nlohmann::json({{"ring-registered", 1000 - EventRateLimit::kBurst}}));
	auto lines = file.lines();
	REQUIRE(lines.size() == EventRateLimit::kBurst + 1);
	CHECK(lines.back()["event"] == "guest-panic");
}

TEST_CASE("threads emit while the loop flushes: every line whole", "[event-log]")
{
	EventFile file;
	auto log = file.open(test_log());
	std::atomic<bool> done{false};
	std::thread flusher([&] {
		while (!done)
			log->flush();
	});
	std::vector<std::thread> emitters;
	for (int t = 0; t < 3; ++t) {
		emitters.emplace_back([&, t] {
			for (int i = 0; i < 20; ++i)
				log->emit(static_cast<EventKind>(t), {{"thread", t}, {"i", i}});
		});
	}
	for (auto &emitter : emitters)
		emitter.join();
	done = true;
	flusher.join();
	log->flush();
	CHECK(file.lines().size() == 60 - log->dropped());
}

TEST_CASE("a disabled log takes events and writes nothing", "[event-log]")
{
	auto log = EventLog::disabled(test_log());
	CHECK_FALSE(log->enabled());
	log->emit(EventKind::Started);
	log->flush();
	CHECK(log->dropped() == 0);
}

TEST_CASE("the --events path must be a writable regular file", "[event-log][preflight]")
{
	EventFile file;
	CHECK(check_events_path(file.path).ok());
	auto folder = check_events_path(file.folder);
	REQUIRE_FALSE(folder.ok());
	CHECK(folder.error().message == "--events " + file.folder.string() + ": is a directory");
	auto missing = check_events_path("/nonexistent/dir/e.jsonl");
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message.starts_with("--events /nonexistent/dir/e.jsonl: the directory"));
	auto terminal = check_events_path("/dev/null");
	REQUIRE_FALSE(terminal.ok());
	CHECK(terminal.error().message ==
	      "--events /dev/null: not a regular file (a FIFO or terminal could stall the VMM)");
	// An existing file is truncated when opened.
	std::ofstream(file.path) << "old\n";
	auto log = file.open(test_log());
	log->flush();
	CHECK(file.text_lines().empty());
}
