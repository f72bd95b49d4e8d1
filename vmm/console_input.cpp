#include "vmm/console_input.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "base/clock.h"

namespace kairos::vmm {
namespace {

constexpr size_t kReadChunk = 256;

}  // namespace

Result<std::unique_ptr<ConsoleInput>> ConsoleInput::open(int fd, devices::Serial &serial, EventLoop &loop, Hooks hooks,
							 const Logger &log)
{
	KAIROS_TRY_ASSIGN(wanted, EventFd::create(EventFd::Mode::NonBlocking, "the console's input wake-up"));
	KAIROS_TRY_ASSIGN(timer, TimerFd::create(TimerFd::Mode::NonBlocking, "the console's input pacing timer"));
	std::unique_ptr<ConsoleInput> input(
		new ConsoleInput(fd, serial, loop, std::move(hooks), log, std::move(wanted), std::move(timer)));
	if (isatty(fd)) {
		KAIROS_TRY_ASSIGN(raw, RawTerminal::enter(fd));
		input->raw_.emplace(std::move(raw));
	}
	ConsoleInput *self = input.get();
	serial.set_input_wanted([self] { self->input_wanted_.signal(); });
	// Consuming is all: the owner calls update_watch after every wake-up.
	KAIROS_TRY(loop.watch(input->input_wanted_.fd(), [self] { self->input_wanted_.consume(); }));
	KAIROS_TRY(loop.watch(input->timer_.fd(), [self] {
		self->timer_.consume();
		self->timer_deadline_.reset();  // expired: update_watch re-arms
	}));
	input->update_watch();
	return input;
}

void ConsoleInput::update_watch()
{
	const uint64_t now = monotonic_now_ns();
	const uint64_t character_ns = serial_.character_time_ns();
	note_drain(now);
	fire_character_timeout(now);
	deliver(now, character_ns);
	arm_character_timeout(now, character_ns);
	set_watch(open_ && pending_.size() < kPendingCapacity);
	std::optional<uint64_t> deadline = character_timeout_at_;
	if (std::optional<uint64_t> batch_at = next_batch_at(now, character_ns); batch_at && *batch_at > now)
		deadline = std::min(*batch_at, deadline.value_or(*batch_at));
	arm_timer(deadline);
}

void ConsoleInput::note_drain(uint64_t now_ns)
{
	if (!batch_delivered_at_ || serial_.input_space() < devices::Serial::kFifoSize)
		return;
	// The UART signalled input_wanted_ on the last byte's read, so this
	// runs within a loop wake-up of it.
	const uint64_t took = now_ns - *batch_delivered_at_;
	rest_until_ns_ = now_ns + std::min(kRestPerDrain * took, kMaxRestNs);
	batch_delivered_at_.reset();
}

void ConsoleInput::fire_character_timeout(uint64_t now_ns)
{
	if (character_timeout_at_ && *character_timeout_at_ <= now_ns) {
		serial_.character_timeout();
		character_timeout_at_.reset();
	}
}

void ConsoleInput::arm_character_timeout(uint64_t now_ns, uint64_t character_ns)
{
	// Characters below the trigger level interrupt only through the
	// timeout; deliver() restarts it with each batch, as a character
	// arriving restarts the UART's.
	if (!character_timeout_at_ && serial_.awaits_character_timeout())
		character_timeout_at_ = now_ns + devices::Serial::kCharacterTimeoutChars * character_ns;
}

std::optional<uint64_t> ConsoleInput::next_batch_at(uint64_t now_ns, uint64_t character_ns) const
{
	if (pending_.empty() || !serial_.guest_reads_input())
		return std::nullopt;
	if (batch_delivered_at_)
		return std::nullopt;  // the read that empties the FIFO signals input_wanted_
	// A trigger level at a time, or what there is: one interrupt per
	// batch, as on a real line, rather than one per character.
	const size_t batch = std::min(pending_.size(), serial_.receive_trigger_level());
	return std::max(pacer_.ready_at(batch, now_ns, character_ns), rest_until_ns_);
}

void ConsoleInput::deliver(uint64_t now_ns, uint64_t character_ns)
{
	std::optional<uint64_t> batch_at = next_batch_at(now_ns, character_ns);
	if (!batch_at || *batch_at > now_ns)
		return;
	const size_t count = std::min({pending_.size(), serial_.input_space(), pacer_.available(now_ns, character_ns)});
	if (count == 0)
		return;  // the guest's own loopback bytes fill the FIFO
	std::vector<uint8_t> bytes(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));
	pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));
	pacer_.take(count, now_ns, character_ns);
	batch_delivered_at_ = now_ns;
	character_timeout_at_.reset();  // characters arrived: the timeout restarts
	serial_.enqueue_input(bytes);
	if (hooks_.line && std::find(bytes.begin(), bytes.end(), '\n') != bytes.end())
		hooks_.line();
}

void ConsoleInput::arm_timer(std::optional<uint64_t> deadline_ns)
{
	if (deadline_ns == timer_deadline_)
		return;
	if (Status armed = timer_.arm_at(deadline_ns); !armed) {
		// Without it input would stall for good: say why, stop reading.
		log_.warn("console input stops: {}", armed.error().message);
		open_ = false;
		pending_.clear();
		set_watch(false);
		return;
	}
	timer_deadline_ = deadline_ns;
}

void ConsoleInput::set_watch(bool want)
{
	if (want && !watched_) {
		// The guest runs on without input; say why it gets none.
		if (auto watched = loop_.watch(fd_, [this] { read_ahead(); }); !watched) {
			log_.warn("console input stops: {}", watched.error().message);
			open_ = false;
		}
		watched_ = open_;
	} else if (!want && watched_) {
		loop_.unwatch(fd_);
		watched_ = false;
	}
}

void ConsoleInput::read_ahead()
{
	uint8_t buffer[kReadChunk];
	const size_t want = std::min(sizeof(buffer), kPendingCapacity - std::min(kPendingCapacity, pending_.size()));
	if (!open_ || want == 0)
		return;  // update_watch, right after, sees why
	ssize_t got = ::read(fd_, buffer, want);
	if (got <= 0) {
		if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
			open_ = false;  // EOF: the guest keeps running without input
			set_watch(false);
		}
		return;
	}
	for (ssize_t i = 0; i < got; ++i) {
		auto action = raw_ ? escape_.feed(buffer[i]) : EscapeDetector::Action::Forward;
		if (action == EscapeDetector::Action::Quit) {
			if (hooks_.quit)
				hooks_.quit();
			return;
		}
		if (action == EscapeDetector::Action::Forward)
			pending_.push_back(buffer[i]);
	}
}

}  // namespace kairos::vmm
