// EventLog: `kairos run --events FILE`, what happened to the VM as JSON
// lines (issue 11), so that users and the benchmarks read facts instead of
// scraping the guest console. One object per line, as QMP's events are:
//
//   {"event":"ring-registered","time":"2026-12-06T14:42:29.123456Z",
//    "monotonic_ns":81234567890,"elapsed_ns":5123456789,"data":{...}}
//
// `monotonic_ns` is the host's CLOCK_MONOTONIC, which is also the guest's
// system time through the shared-info page (DESIGN.md 4); `elapsed_ns`
// counts from the moment the file was opened; `time` is the wall clock.
//
// Events come from vCPU threads (the Kairos device's commands, the console's
// panic banner), the timer thread (its failure) and main. None of them may
// wait for a disk: emit() puts the event into a bounded queue and wakes
// the main loop through an eventfd, as ConsoleOutput does; the loop formats
// the queue and writes it out. A full queue drops the line and counts it. A guest can
// cause events (register pages in a loop, report panics), so each kind is
// also rate-limited; what either limit drops is counted per kind and the
// `stopped` line, which is never dropped, says how many.
//
// No global state: main makes one (a disabled one without --events) and
// hands it by reference to Machine, which passes it on.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/event_fd.h"
#include "base/logger.h"
#include "base/pi_mutex.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/event_loop.h"

namespace kairos::vmm {

enum class EventKind {
	Started,                 // the VM is built; its configuration
	VcpusRunning,            // every vCPU thread was started
	SharedInfoRegistered,    // kairos.ko registered its shared-info page
	SharedInfoUnregistered,  // ... and let go of it (the module unloaded)
	RingRegistered,          // kairos.ko registered its VMRPC timer ring
	RingUnregistered,        // ... and let go of it
	GuestPanic,              // kairos.ko's panic notice, or the console's panic banner
	TimerThreadFailed,       // the timer thread stopped on its own; the VM stops
	Paused,                  // kairos ctl pause: the vCPUs stopped entering the guest
	Resumed,                 // kairos ctl resume: they run again; how long they were paused
	PowerButton,             // kairos ctl shutdown pressed the ACPI power button
	Stopped,                 // the last line: why, and the exit code
};
inline constexpr size_t kEventKinds = static_cast<size_t>(EventKind::Stopped) + 1;

// The event's name in the file: "started", "ring-registered", ...
std::string_view to_string(EventKind kind);

// The two host clocks at one event, in ns.
struct EventTime {
	uint64_t monotonic_ns = 0;
	uint64_t realtime_ns = 0;
};

// Wall-clock ns since the epoch as ISO 8601 UTC with microseconds:
// "2026-12-06T14:42:29.123456Z".
std::string iso8601_utc(uint64_t realtime_ns);

// One line of the file, without its newline. `start_monotonic_ns` is what
// elapsed_ns counts from; `data` must be a JSON object.
std::string format_event_line(EventKind kind, const nlohmann::json &data, EventTime at, uint64_t start_monotonic_ns);

// Per kind, a token bucket: kBurst events at once, then one per kRefillNs.
// Enough for a module that is reloaded now and then; a guest that
// registers in a loop costs at most 8640 lines a day per kind.
class EventRateLimit {
public:
	static constexpr uint32_t kBurst = 64;
	static constexpr uint64_t kRefillNs = 10'000'000'000ULL;

	// Whether one more event of `kind` may go out at now_ns (a monotonic
	// clock that never goes back); takes its token if so.
	bool allow(EventKind kind, uint64_t now_ns);

private:
	struct Bucket {
		uint32_t tokens = kBurst;
		uint64_t refilled_ns = 0;  // when the last token was added (0: never)
	};
	std::array<Bucket, kEventKinds> buckets_{};
};

class EventLog {
public:
	// Lines waiting for the loop. At most a few events a second are
	// expected; a queue this long only fills when the loop is stuck.
	static constexpr size_t kQueueLines = 256;

	// No --events: emit() and flush() do nothing.
	static std::unique_ptr<EventLog> disabled(const Logger &log);
	// Creates or truncates `path` (checked beforehand by
	// check_events_path). The error names --events and the path.
	static Result<std::unique_ptr<EventLog>> open(const std::filesystem::path &path, const Logger &log);
	EventLog(const EventLog &) = delete;
	EventLog &operator=(const EventLog &) = delete;

	bool enabled() const { return fd_.valid(); }

	// From any thread; never blocks on I/O (one short lock, one eventfd
	// write). `data` is the event's fields, a JSON object. A line the
	// rate limit or a full queue refuses is counted, not written.
	// EventKind::Stopped is exempt from both: it is main's last line.
	void emit(EventKind kind, nlohmann::json data = nlohmann::json::object());

	// From here on the loop writes queued lines out when emit wakes it.
	Status attach(EventLoop &loop);
	// Writes every queued line now (the loop, or main after it stopped).
	// A failed write is warned about once and drops the rest.
	void flush();

	// Lines not written, per kind and in all (rate limit, full queue, a
	// write that failed).
	uint64_t dropped(EventKind kind) const;
	uint64_t dropped() const;
	// The per-kind counts that are not zero, as {"ring-registered": 3}.
	nlohmann::json dropped_json() const;

private:
	struct Entry {
		EventKind kind;
		nlohmann::json data;
		EventTime at;
	};

	EventLog(UniqueFd fd, std::string path, std::optional<EventFd> wake, const Logger &log);
	void drop(EventKind kind);  // requires mutex_
	bool write_all(const std::string &text);

	UniqueFd fd_;
	std::string path_;
	std::optional<EventFd> wake_;  // none when disabled
	const Logger &log_;
	const uint64_t start_ns_;
	// The timer thread may emit, possibly at a real-time priority.
	mutable PiMutex mutex_;
	std::deque<Entry> queue_;
	EventRateLimit limit_;
	std::array<uint64_t, kEventKinds> dropped_{};
	bool failed_ = false;  // the loop's (and main's): a write failed
};

}  // namespace kairos::vmm
