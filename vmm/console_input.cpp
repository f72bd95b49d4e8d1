#include "vmm/console_input.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>

namespace kairos::vmm {
namespace {

constexpr size_t kReadChunk = 256;

}  // namespace

Result<std::unique_ptr<ConsoleInput>> ConsoleInput::open(int fd, devices::Serial &serial, EventLoop &loop, Hooks hooks,
							 const Logger &log)
{
	KAIROS_TRY_ASSIGN(wanted, EventFd::create(EventFd::Mode::NonBlocking, "the console's input wake-up"));
	std::unique_ptr<ConsoleInput> input(
		new ConsoleInput(fd, serial, loop, std::move(hooks), log, std::move(wanted)));
	if (isatty(fd)) {
		KAIROS_TRY_ASSIGN(raw, RawTerminal::enter(fd));
		input->raw_.emplace(std::move(raw));
	}
	ConsoleInput *self = input.get();
	serial.set_input_wanted([self] { self->input_wanted_.signal(); });
	// Consuming is all: the owner calls update_watch after every wake-up.
	KAIROS_TRY(loop.watch(input->input_wanted_.fd(), [self] { self->input_wanted_.consume(); }));
	input->update_watch();
	return input;
}

void ConsoleInput::update_watch()
{
	bool want = open_ && serial_.guest_reads_input() && serial_.input_space() > 0;
	if (want && !watched_) {
		// The guest runs on without input; say why it gets none.
		if (auto watched = loop_.watch(fd_, [this] { forward(); }); !watched) {
			log_.warn("console input stops: {}", watched.error().message);
			open_ = false;
		}
		watched_ = open_;
	} else if (!want && watched_) {
		loop_.unwatch(fd_);
		watched_ = false;
	}
}

void ConsoleInput::forward()
{
	if (!open_ || serial_.input_space() == 0)
		return;
	uint8_t buffer[kReadChunk];
	size_t want = std::min(sizeof(buffer), serial_.input_space());
	ssize_t got = ::read(fd_, buffer, want);
	if (got <= 0) {
		if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
			open_ = false;  // EOF: the guest keeps running without input
			loop_.unwatch(fd_);
			watched_ = false;
		}
		return;
	}
	std::vector<uint8_t> bytes;
	for (ssize_t i = 0; i < got; ++i) {
		auto action = raw_ ? escape_.feed(buffer[i]) : EscapeDetector::Action::Forward;
		if (action == EscapeDetector::Action::Quit) {
			if (hooks_.quit)
				hooks_.quit();
			return;
		}
		if (action == EscapeDetector::Action::Forward)
			bytes.push_back(buffer[i]);
	}
	serial_.enqueue_input(bytes);
	if (hooks_.line && std::find(bytes.begin(), bytes.end(), '\n') != bytes.end())
		hooks_.line();
}

}  // namespace kairos::vmm
