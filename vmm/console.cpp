#include "vmm/console.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "base/error.h"

namespace kairos::vmm {
namespace {

constexpr size_t kMaxLineLength = 4096;
constexpr uint8_t kEscapeKey = 0x01;  // Ctrl-A

// Why bytes were dropped, for the one warning line.
constexpr const char *kDropFull = "the reader is not keeping up (64 KiB buffered)";
constexpr const char *kDropLimit = "console.max_file_mib reached";
constexpr const char *kDropFailed = "writing it failed (the reader went away?)";
constexpr const char *kDropAtStop = "the reader did not take it within the stop's wait";

}  // namespace

ConsoleOutput::ConsoleOutput(ConsoleSink sink, const Logger &log, EventFd wake, uint64_t limit_bytes)
	: sink_(std::move(sink)), log_(log), wake_(std::move(wake)), limit_bytes_(limit_bytes), ring_(kBufferBytes)
{
}

Result<std::unique_ptr<ConsoleOutput>> ConsoleOutput::create(ConsoleSink sink, const Logger &log, uint64_t limit_bytes)
{
	KAIROS_TRY_ASSIGN(wake, EventFd::create(EventFd::Mode::NonBlocking, "the console's output wake-up"));
	return std::unique_ptr<ConsoleOutput>(new ConsoleOutput(std::move(sink), log, std::move(wake), limit_bytes));
}

void ConsoleOutput::write(std::span<const uint8_t> bytes, bool watched)
{
	std::lock_guard lock(mutex_);
	transmitted_.fetch_add(bytes.size(), std::memory_order_relaxed);
	if (watched) {
		for (uint8_t byte : bytes)
			scan(byte);
	}
	if (sink_.kind() == ConsoleSink::Kind::Discard)
		return;
	bool was_empty = count_ == 0;
	bool first_drop = drop_reason_ == nullptr;
	size_t appended = append(bytes);
	// Only on these edges: a wake-up per byte would cost the guest more
	// than the old write per byte did.
	if ((was_empty && appended > 0) || (first_drop && drop_reason_))
		wake_.signal();
}

size_t ConsoleOutput::append(std::span<const uint8_t> bytes)
{
	size_t room = kBufferBytes - count_;
	uint64_t allowed = limit_bytes_ - std::min(limit_bytes_, accepted_);
	size_t take = failed_ ? 0 : static_cast<size_t>(std::min<uint64_t>({bytes.size(), room, allowed}));
	for (size_t i = 0; i < take; ++i)
		ring_[(head_ + count_ + i) % kBufferBytes] = bytes[i];
	count_ += take;
	accepted_ += take;
	if (take < bytes.size())
		drop(bytes.size() - take, failed_ ? kDropFailed : (take == room ? kDropFull : kDropLimit));
	return take;
}

void ConsoleOutput::drop(size_t count, const char *reason)
{
	dropped_.fetch_add(count, std::memory_order_relaxed);
	if (!drop_reason_)
		drop_reason_ = reason;
}

size_t ConsoleOutput::bytes_buffered() const
{
	std::lock_guard lock(mutex_);
	return count_;
}

bool ConsoleOutput::flush()
{
	std::lock_guard flushing(flush_mutex_);
	for (;;) {
		std::span<const uint8_t> first, second;
		{
			std::lock_guard lock(mutex_);
			if (count_ == 0)
				return true;
			size_t first_size = std::min(count_, kBufferBytes - head_);
			first = {ring_.data() + head_, first_size};
			second = {ring_.data(), count_ - first_size};
		}
		// Unlocked: writers only append behind these bytes, never over them.
		ConsoleSink::Written written = sink_.write(first, second);
		std::lock_guard lock(mutex_);
		head_ = (head_ + written.bytes) % kBufferBytes;
		count_ -= written.bytes;
		if (written.error != 0) {
			failed_ = true;
			drop(std::exchange(count_, 0), kDropFailed);
			return true;
		}
		if (written.would_block || written.bytes == 0)
			return count_ == 0;
	}
}

Status ConsoleOutput::attach(EventLoop &loop)
{
	loop_ = &loop;
	return loop.watch(wake_.fd(), [this] {
		wake_.consume();
		on_ready();
	});
}

// On the loop thread: the buffer has bytes, or the sink became writable.
void ConsoleOutput::on_ready()
{
	bool empty = flush();
	warn_once();
	if (!empty && !watching_writable_) {
		auto watched = loop_->watch_writable(sink_.fd(), [this] { on_ready(); });
		if (!watched) {
			log_.error("console output: {}", watched.error().message);
			std::lock_guard lock(mutex_);
			failed_ = true;
			drop(std::exchange(count_, 0), kDropFailed);
			return;
		}
		watching_writable_ = true;
	} else if (empty && watching_writable_) {
		loop_->unwatch(sink_.fd());
		watching_writable_ = false;
	}
}

void ConsoleOutput::drain(std::chrono::milliseconds budget)
{
	auto deadline = std::chrono::steady_clock::now() + budget;
	while (!flush()) {
		auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		if (left.count() <= 0)
			break;
		pollfd writable{sink_.fd(), POLLOUT, 0};
		poll(&writable, 1, static_cast<int>(left.count()));
	}
	{
		std::lock_guard lock(mutex_);
		if (count_ > 0)
			drop(std::exchange(count_, 0), kDropAtStop);
	}
	warn_once();
}

// From the loop or the stop, never a vCPU thread: stderr may be as slow as
// the console's reader.
void ConsoleOutput::warn_once()
{
	const char *reason;
	{
		std::lock_guard lock(mutex_);
		reason = drop_reason_;
	}
	if (warned_ || !reason)
		return;
	warned_ = true;
	log_.warn("dropping guest console output: {} (--stats console.dropped_bytes counts it)", reason);
}

devices::Serial::OutputCallback ConsoleOutput::serial_sink()
{
	return [this](std::span<const uint8_t> bytes, devices::Serial::TransmitPath path) {
		write(bytes, path == devices::Serial::TransmitPath::Polled);
	};
}

void ConsoleOutput::watch_line(std::string text, std::function<void()> action)
{
	std::lock_guard lock(mutex_);
	watches_.push_back({std::move(text), std::move(action)});
}

void ConsoleOutput::scan(uint8_t byte)
{
	if (byte == '\n' || byte == '\r') {
		for (auto &watch : watches_) {
			if (!watch.fired && line_.find(watch.text) != std::string::npos) {
				watch.fired = true;
				watch.action();
			}
		}
		line_.clear();
		return;
	}
	if (line_.size() < kMaxLineLength)
		line_.push_back(static_cast<char>(byte));
}

bool terminal_of_another_job(int fd)
{
	if (!isatty(fd))
		return false;
	const pid_t foreground = tcgetpgrp(fd);  // -1: not our controlling terminal
	return foreground > 0 && foreground != getpgrp();
}

Result<RawTerminal> RawTerminal::enter(int fd)
{
	termios saved{};
	if (tcgetattr(fd, &saved) != 0)
		return errno_error("tcgetattr on the console terminal");
	termios raw = saved;
	cfmakeraw(&raw);
	// Keep output post-processing so host-side messages still line up.
	raw.c_oflag = saved.c_oflag;
	if (tcsetattr(fd, TCSANOW, &raw) != 0)
		return errno_error("tcsetattr (raw mode) on the console terminal");
	return RawTerminal(fd, saved);
}

RawTerminal::RawTerminal(RawTerminal &&other) noexcept : fd_(other.fd_), saved_(other.saved_)
{
	other.fd_ = -1;
}

RawTerminal::~RawTerminal()
{
	if (fd_ >= 0)
		tcsetattr(fd_, TCSANOW, &saved_);
}

EscapeDetector::Action EscapeDetector::feed(uint8_t byte)
{
	if (after_escape_) {
		after_escape_ = false;
		if (byte == 'x')
			return Action::Quit;
		return byte == kEscapeKey ? Action::Forward : Action::Swallow;  // Ctrl-A Ctrl-A sends one
	}
	if (byte == kEscapeKey) {
		after_escape_ = true;
		return Action::Swallow;
	}
	return Action::Forward;
}

Result<std::unique_ptr<ConsoleOutput>> ConsoleOutput::for_config(const Config::Console &console, const Logger &log)
{
	switch (console.output) {
	case Config::Console::Output::Stdout:
		return create(ConsoleSink::inherited(STDOUT_FILENO), log);
	case Config::Console::Output::None:
		return create(ConsoleSink::discard(), log);
	case Config::Console::Output::File: {
		KAIROS_TRY_ASSIGN(file, ConsoleSink::file(console.file));
		return create(std::move(file), log, console.max_file_mib << 20);
	}
	}
	return make_error("console.output: unknown kind");
}

}  // namespace kairos::vmm
