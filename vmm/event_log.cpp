#include "vmm/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/error.h"

namespace kairos::vmm {

std::string_view to_string(EventKind kind)
{
	switch (kind) {
	case EventKind::Started:
		return "started";
	case EventKind::VcpusRunning:
		return "vcpus-running";
	case EventKind::SharedInfoRegistered:
		return "shared-info-registered";
	case EventKind::SharedInfoUnregistered:
		return "shared-info-unregistered";
	case EventKind::RingRegistered:
		return "ring-registered";
	case EventKind::RingUnregistered:
		return "ring-unregistered";
	case EventKind::GuestPanic:
		return "guest-panic";
	case EventKind::TimerThreadFailed:
		return "timer-thread-failed";
	case EventKind::Paused:
		return "paused";
	case EventKind::Resumed:
		return "resumed";
	case EventKind::PowerButton:
		return "power-button";
	case EventKind::Stopped:
		return "stopped";
	}
	return "unknown";
}

// Calendar arithmetic alone (C++20 chrono), no gmtime_r: glibc's may open
// /etc/localtime on first use, which no thread's seccomp list allows.
std::string iso8601_utc(uint64_t realtime_ns)
{
	using namespace std::chrono;
	sys_time<nanoseconds> when{nanoseconds{realtime_ns}};
	sys_days day = floor<days>(when);
	year_month_day date{day};
	hh_mm_ss<microseconds> time{floor<microseconds>(when - day)};
	return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", static_cast<int>(date.year()),
			   static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), time.hours().count(),
			   time.minutes().count(), time.seconds().count(), time.subseconds().count());
}

std::string format_event_line(EventKind kind, const nlohmann::json &data, EventTime at, uint64_t start_monotonic_ns)
{
	// nlohmann's objects sort their keys; this order reads better, so the
	// fixed fields are written by hand around the data.
	nlohmann::json name = std::string(to_string(kind));
	uint64_t elapsed = at.monotonic_ns >= start_monotonic_ns ? at.monotonic_ns - start_monotonic_ns : 0;
	return fmt::format(R"({{"event":{},"time":"{}","monotonic_ns":{},"elapsed_ns":{},"data":{}}})", name.dump(),
			   iso8601_utc(at.realtime_ns), at.monotonic_ns, elapsed,
			   data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool EventRateLimit::allow(EventKind kind, uint64_t now_ns)
{
	Bucket &bucket = buckets_[static_cast<size_t>(kind)];
	if (bucket.tokens == kBurst || now_ns < bucket.refilled_ns) {
		// A full bucket earns nothing: its refill starts at the next spend.
		bucket.refilled_ns = now_ns;
	} else {
		uint64_t earned = (now_ns - bucket.refilled_ns) / kRefillNs;
		if (earned > 0) {
			bucket.tokens = static_cast<uint32_t>(std::min<uint64_t>(kBurst, bucket.tokens + earned));
			bucket.refilled_ns += earned * kRefillNs;
		}
	}
	if (bucket.tokens == 0)
		return false;
	--bucket.tokens;
	return true;
}

EventLog::EventLog(UniqueFd fd, std::string path, std::optional<EventFd> wake, const Logger &log)
	: fd_(std::move(fd)), path_(std::move(path)), wake_(std::move(wake)), log_(log), start_ns_(monotonic_now_ns())
{
}

std::unique_ptr<EventLog> EventLog::disabled(const Logger &log)
{
	return std::unique_ptr<EventLog>(new EventLog(UniqueFd(), "", std::nullopt, log));
}

Result<std::unique_ptr<EventLog>> EventLog::open(const std::filesystem::path &path, const Logger &log)
{
	UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (!fd)
		return errno_error("--events " + path.string());
	KAIROS_TRY_ASSIGN(wake, EventFd::create(EventFd::Mode::NonBlocking, "the event log's wake-up"));
	return std::unique_ptr<EventLog>(new EventLog(std::move(fd), path.string(), std::move(wake), log));
}

void EventLog::emit(EventKind kind, nlohmann::json data)
{
	if (!enabled())
		return;
	bool was_empty;
	{
		std::lock_guard lock(mutex_);
		// Read under the lock, so lines from different threads are in
		// time order.
		EventTime at{monotonic_now_ns(), clock_now_ns(CLOCK_REALTIME)};
		bool exempt = kind == EventKind::Stopped;
		if (!exempt && (queue_.size() >= kQueueLines || !limit_.allow(kind, at.monotonic_ns))) {
			drop(kind);
			return;
		}
		was_empty = queue_.empty();
		queue_.push_back({kind, std::move(data), at});
	}
	// Only on this edge: the loop takes everything queued when it wakes.
	if (was_empty)
		wake_->signal();
}

void EventLog::drop(EventKind kind)
{
	++dropped_[static_cast<size_t>(kind)];
}

Status EventLog::attach(EventLoop &loop)
{
	if (!enabled())
		return {};
	return loop.watch(wake_->fd(), [this] {
		wake_->consume();
		flush();
	});
}

bool EventLog::write_all(const std::string &text)
{
	size_t done = 0;
	while (done < text.size()) {
		ssize_t written = ::write(fd_.get(), text.data() + done, text.size() - done);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0) {
			log_.warn("--events {}: {}; later events are not written", path_,
				  written < 0 ? std::strerror(errno) : "the file takes no more");
			return false;
		}
		done += static_cast<size_t>(written);
	}
	return true;
}

void EventLog::flush()
{
	std::deque<Entry> batch;
	{
		std::lock_guard lock(mutex_);
		batch.swap(queue_);
	}
	if (batch.empty())
		return;
	// Formatted here, on the loop, rather than on the thread that emitted.
	std::string text;
	for (const Entry &entry : batch)
		text += format_event_line(entry.kind, entry.data, entry.at, start_ns_) + '\n';
	if (!failed_ && write_all(text))
		return;
	failed_ = true;
	std::lock_guard lock(mutex_);
	for (const Entry &entry : batch)
		drop(entry.kind);
}

uint64_t EventLog::dropped(EventKind kind) const
{
	std::lock_guard lock(mutex_);
	return dropped_[static_cast<size_t>(kind)];
}

uint64_t EventLog::dropped() const
{
	std::lock_guard lock(mutex_);
	uint64_t total = 0;
	for (uint64_t count : dropped_)
		total += count;
	return total;
}

nlohmann::json EventLog::dropped_json() const
{
	std::lock_guard lock(mutex_);
	nlohmann::json counts = nlohmann::json::object();
	for (size_t kind = 0; kind < kEventKinds; ++kind) {
		if (dropped_[kind] > 0)
			counts[std::string(to_string(static_cast<EventKind>(kind)))] = dropped_[kind];
	}
	return counts;
}

}  // namespace kairos::vmm
