// libFuzzer target: a guest's port accesses to the CMOS RTC (devices/rtc),
// in any order and value, with the host clock moving by any step and the
// VMM's event loop firing the RTC's timer at its deadline. Besides what the
// sanitizers catch, it checks the interrupt logic against itself:
//   - the timer is asked only for delays in the future, and is never armed
//     while the line is high (no host wake-up until the guest reads C);
//   - a timer that fires at its deadline with no access in between raises
//     the line: the deadline and the flags are computed alike;
//   - register C's IRQF is the line's level, and reading C lowers it.
//
// Input: a sequence of 3-byte operations: what (index write, data write,
// data read, clock step, or a timer expiry), and two bytes of value.
#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>

#include "devices/device_timer.h"
#include "devices/irq_line.h"
#include "devices/rtc.h"
#include "test/fuzz/fuzz_check.h"

using namespace kairos::devices;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr uint8_t kRegisterC = 0x0c;
constexpr uint8_t kInterruptRequest = 0x80;

class Line : public IrqLine {
public:
	void set_level(bool level) override
	{
		FUZZ_CHECK(level != high);  // the RTC calls only on a change
		high = level;
	}
	bool high = false;
};

class Timer : public DeviceTimer {
public:
	explicit Timer(const int64_t &now) : now_(now) {}
	void arm(std::optional<std::chrono::nanoseconds> delay) override
	{
		FUZZ_CHECK(!delay || delay->count() > 0);
		deadline = delay ? std::optional(now_ + delay->count()) : std::nullopt;
	}
	std::optional<int64_t> deadline;

private:
	const int64_t &now_;
};

struct Board {
	int64_t now = 1'796'567'845 * kSecond + 123'456'789;  // 2026-12
	uint8_t index = 0;
	std::shared_ptr<Line> line = std::make_shared<Line>();
	std::shared_ptr<Timer> timer = std::make_shared<Timer>(now);
	Rtc rtc{[this] {
			return timespec{static_cast<time_t>(now / kSecond), static_cast<long>(now % kSecond)};
		},
		line, timer};

	void check_quiet_while_high() const { FUZZ_CHECK(!line->high || !timer->deadline); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Board board;
	for (size_t at = 0; at + 3 <= size; at += 3) {
		const uint8_t what = data[at] % 5;
		const uint8_t value = data[at + 1];
		const uint16_t wide = static_cast<uint16_t>(data[at + 1] | data[at + 2] << 8);
		switch (what) {
		case 0:  // select a register; mostly the clock's own 0x00-0x0d
			board.index = (data[at + 2] & 1) ? value : value % 0x0e;
			board.rtc.write(0, {&board.index, 1});
			break;
		case 1:
			board.rtc.write(1, {&value, 1});
			break;
		case 2: {
			const bool was_high = board.line->high;
			uint8_t read = 0;
			board.rtc.read(1, {&read, 1});
			if ((board.index & 0x7f) == kRegisterC) {
				// The read may have caught up with an event the timer
				// had not delivered yet; it then reports IRQF too.
				FUZZ_CHECK(!was_high || (read & kInterruptRequest));
				FUZZ_CHECK(!board.line->high);
			}
			break;
		}
		case 3:  // the host clock moves on: microseconds to hours
			board.now += static_cast<int64_t>(wide) << (data[at] % 7 * 5);
			break;
		case 4: {
			// The event loop serves the timer if it is due by then: at
			// its deadline, or late if the clock already passed it.
			const int64_t until = board.now + (static_cast<int64_t>(wide) << 10);
			if (board.timer->deadline && *board.timer->deadline <= until) {
				board.now = std::max(board.now, *board.timer->deadline);
				board.timer->deadline.reset();
				board.rtc.timer_expired();
				FUZZ_CHECK(board.line->high);
			} else {
				board.now = until;
			}
			break;
		}
		}
		board.check_quiet_while_high();
	}
	return 0;
}
