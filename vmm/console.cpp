#include "vmm/console.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.h"

namespace kairos::vmm {
namespace {

constexpr size_t kMaxLineLength = 4096;
constexpr uint8_t kEscapeKey = 0x01;  // Ctrl-A

void write_all(int fd, const uint8_t *data, size_t size)
{
	while (size > 0) {
		ssize_t written = ::write(fd, data, size);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return;  // the reader went away; the guest keeps running
		data += written;
		size -= static_cast<size_t>(written);
	}
}

}  // namespace

std::unique_ptr<ConsoleOutput> ConsoleOutput::to_stdout()
{
	return std::make_unique<ConsoleOutput>(UniqueFd(), STDOUT_FILENO);
}

Result<std::unique_ptr<ConsoleOutput>> ConsoleOutput::to_file(const std::filesystem::path &path)
{
	UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (!fd)
		return errno_error("console.output " + path.string());
	int raw = fd.get();
	return std::make_unique<ConsoleOutput>(std::move(fd), raw);
}

std::unique_ptr<ConsoleOutput> ConsoleOutput::discard()
{
	return std::make_unique<ConsoleOutput>(UniqueFd(), -1);
}

void ConsoleOutput::write(std::span<const uint8_t> bytes, bool watched)
{
	std::lock_guard lock(mutex_);
	// Unbuffered on purpose: a crash or kill must not lose guest output.
	if (fd_ >= 0)
		write_all(fd_, bytes.data(), bytes.size());
	bytes_.fetch_add(bytes.size(), std::memory_order_relaxed);
	if (!watched)
		return;
	for (uint8_t byte : bytes)
		scan(byte);
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

Result<std::unique_ptr<ConsoleOutput>> ConsoleOutput::for_config(const Config::Console &console)
{
	switch (console.output) {
	case Config::Console::Output::Stdout:
		return to_stdout();
	case Config::Console::Output::None:
		return discard();
	case Config::Console::Output::File:
		return to_file(console.file);
	}
	return make_error("console.output: unknown kind");
}

}  // namespace kairos::vmm
