// The CMOS RTC's interrupts (MC146818A registers A, B and C): a fake host
// clock, a line that records when it rises, and a timer that the test fires
// at its deadline the way the VMM's event loop does.
#include <catch2/catch.hpp>

#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "cmos_ports.h"
#include "devices/device_timer.h"
#include "devices/irq_line.h"
#include "devices/rtc.h"

using kairos::devices::DeviceTimer;
using kairos::devices::IrqLine;
using kairos::devices::Rtc;

namespace {

constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kSecondsAlarm = 0x01;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kMinutesAlarm = 0x03;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kHoursAlarm = 0x05;
constexpr uint8_t kRegisterA = 0x0a;
constexpr uint8_t kRegisterB = 0x0b;
constexpr uint8_t kRegisterC = 0x0c;

// Register A: the 32.768 kHz time base with a rate select.
constexpr uint8_t kNoPeriodic = 0x20;
constexpr uint8_t k2Hz = 0x2f;
constexpr uint8_t k8192Hz = 0x23;
constexpr uint8_t k256HzLow = 0x21;   // RS = 1
constexpr uint8_t k256HzHigh = 0x28;  // RS = 8
// Register B.
constexpr uint8_t kSet = 0x80;
constexpr uint8_t kPie = 0x40;
constexpr uint8_t kAie = 0x20;
constexpr uint8_t kUie = 0x10;
constexpr uint8_t kBinary = 0x04;
constexpr uint8_t k24Hour = 0x02;
// Register C.
constexpr uint8_t kIrqf = 0x80;
constexpr uint8_t kPf = 0x40;
constexpr uint8_t kAf = 0x20;
constexpr uint8_t kUf = 0x10;

constexpr int64_t kSecond = 1'000'000'000;

int64_t utc_ns(int year, int month, int day, int hour, int minute, int second)
{
	struct tm time = {};
	time.tm_year = year - 1900;
	time.tm_mon = month - 1;
	time.tm_mday = day;
	time.tm_hour = hour;
	time.tm_min = minute;
	time.tm_sec = second;
	return static_cast<int64_t>(timegm(&time)) * kSecond;
}

// 2026-11-22 13:45:07.25 UTC, as in rtc_test.cpp.
const int64_t kStart = utc_ns(2026, 11, 22, 13, 45, 7) + kSecond / 4;

class RecordingLine : public IrqLine {
public:
	explicit RecordingLine(const int64_t &now) : now_(now) {}
	void set_level(bool level) override
	{
		if (level && !high)
			rises.push_back(now_);
		high = level;
	}
	bool high = false;
	std::vector<int64_t> rises;  // host times at which the line went high

private:
	const int64_t &now_;
};

class RecordingTimer : public DeviceTimer {
public:
	explicit RecordingTimer(const int64_t &now) : now_(now) {}
	void arm(std::optional<std::chrono::nanoseconds> delay) override
	{
		++requests;
		if (delay)
			CHECK(delay->count() > 0);
		deadline = delay ? std::optional(now_ + delay->count()) : std::nullopt;
	}
	std::optional<int64_t> deadline;  // absolute host time
	int requests = 0;

private:
	const int64_t &now_;
};

struct Board {
	int64_t now = kStart;
	std::shared_ptr<RecordingLine> line = std::make_shared<RecordingLine>(now);
	std::shared_ptr<RecordingTimer> timer = std::make_shared<RecordingTimer>(now);
	Rtc rtc{[this] {
			return timespec{static_cast<time_t>(now / kSecond), static_cast<long>(now % kSecond)};
		},
		line, timer};

	uint8_t in(uint8_t index) { return kairos::test::cmos_read(rtc, index); }
	void out(uint8_t index, uint8_t value) { kairos::test::cmos_write(rtc, index, value); }
	// The event loop's part: fires the timer at each deadline up to
	// `until`, then leaves the clock there.
	void run_until(int64_t until)
	{
		while (timer->deadline && *timer->deadline <= until) {
			now = *timer->deadline;
			timer->deadline.reset();
			rtc.timer_expired();
		}
		now = until;
	}
	// Runs to the next rise of the line (at most `limit` ahead) and acks it
	// as Linux's rtc-cmos does, by reading register C. Returns C.
	uint8_t next_interrupt(int64_t limit = 3 * kSecond)
	{
		const size_t before = line->rises.size();
		const int64_t end = now + limit;
		while (line->rises.size() == before && timer->deadline && *timer->deadline <= end)
			run_until(*timer->deadline);
		REQUIRE(line->rises.size() == before + 1);
		return in(kRegisterC);
	}
};

}  // namespace

TEST_CASE("rtc irq: UIE raises the line once per second, at the second boundary", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kRegisterB, k24Hour | kUie);
	CHECK_FALSE(board.line->high);
	REQUIRE(board.timer->deadline == utc_ns(2026, 11, 22, 13, 45, 8));

	for (int second = 8; second <= 11; second++) {
		CHECK(board.next_interrupt() == (kIrqf | kUf));
		CHECK(board.line->rises.back() == utc_ns(2026, 11, 22, 13, 45, second));
		CHECK_FALSE(board.line->high);                                  // reading C lowered it
		CHECK(board.in(kSeconds) == (second / 10 << 4 | second % 10));  // BCD
	}
	CHECK(board.line->rises.size() == 4);
}

TEST_CASE("rtc irq: reading C clears every flag and lowers the line", "[rtc]")
{
	Board board;
	board.out(kRegisterB, k24Hour | kUie);
	board.run_until(kStart + kSecond);
	REQUIRE(board.line->high);
	// The default 1024 Hz tap ticked too: PF is set although PIE is off.
	CHECK(board.in(kRegisterC) == (kIrqf | kPf | kUf));
	CHECK_FALSE(board.line->high);
	CHECK(board.in(kRegisterC) == 0x00);
	board.out(kRegisterC, 0xff);  // read-only
	CHECK(board.in(kRegisterC) == 0x00);
}

TEST_CASE("rtc irq: while the line is high no timer runs, so a guest that never acks costs nothing", "[rtc]")
{
	Board board;
	board.out(kRegisterA, k8192Hz);
	board.out(kRegisterB, k24Hour | kPie | kUie);
	board.run_until(kStart + 10 * kSecond);
	CHECK(board.line->rises.size() == 1);
	CHECK_FALSE(board.timer->deadline);
	CHECK(board.timer->requests == 1);  // the first arming; expiry left it disarmed
	// The flags kept collecting meanwhile; the read returns them all.
	CHECK(board.in(kRegisterC) == (kIrqf | kPf | kUf));
	CHECK(board.timer->deadline.has_value());
}

TEST_CASE("rtc irq: nothing is raised and no timer is armed while register B enables nothing", "[rtc]")
{
	Board board;
	board.out(kRegisterA, k8192Hz);
	board.out(kSecondsAlarm, 0xff);
	board.out(kMinutesAlarm, 0xff);
	board.out(kHoursAlarm, 0xff);
	board.run_until(kStart + 5 * kSecond);
	CHECK(board.timer->requests == 0);
	CHECK(board.line->rises.empty());
	// The flags are there for a driver that polls.
	CHECK(board.in(kRegisterC) == (kPf | kAf | kUf));
}

TEST_CASE("rtc irq: enabling an interrupt whose flag is set raises it at once; disabling lowers it", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.run_until(kStart + kSecond);  // an update cycle ended: UF
	CHECK_FALSE(board.line->high);
	board.out(kRegisterB, k24Hour | kUie);
	CHECK(board.line->high);
	CHECK(board.line->rises.back() == kStart + kSecond);
	board.out(kRegisterB, k24Hour);
	CHECK_FALSE(board.line->high);
	CHECK(board.in(kRegisterC) == kUf);  // UF stays until read, IRQF went with UIE
}

TEST_CASE("rtc irq: AIE fires when the time reaches the alarm", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kHoursAlarm, 0x13);
	board.out(kMinutesAlarm, 0x45);
	board.out(kSecondsAlarm, 0x10);
	board.out(kRegisterB, k24Hour | kAie);
	REQUIRE(board.timer->deadline == utc_ns(2026, 11, 22, 13, 45, 10));
	CHECK(board.next_interrupt(5 * kSecond) == (kIrqf | kAf | kUf));
	CHECK(board.line->rises.back() == utc_ns(2026, 11, 22, 13, 45, 10));
	CHECK(board.in(kSeconds) == 0x10);
	// Next time tomorrow: the alarm registers compare hours, minutes, seconds.
	CHECK(board.timer->deadline == utc_ns(2026, 11, 23, 13, 45, 10));
}

TEST_CASE("rtc irq: an alarm earlier in the day fires tomorrow", "[rtc]")
{
	Board board;
	board.out(kHoursAlarm, 0x09);
	board.out(kMinutesAlarm, 0x00);
	board.out(kSecondsAlarm, 0x00);
	board.out(kRegisterB, k24Hour | kAie);
	CHECK(board.timer->deadline == utc_ns(2026, 11, 23, 9, 0, 0));
}

TEST_CASE("rtc irq: don't-care alarm bytes (C0-FF) match every value", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kHoursAlarm, 0xc0);
	board.out(kMinutesAlarm, 0xff);
	board.out(kSecondsAlarm, 0x30);
	board.out(kRegisterB, k24Hour | kAie);
	CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 45, 30));

	SECTION("seconds: every second")
	{
		board.out(kSecondsAlarm, 0xd5);
		CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 45, 8));
		CHECK((board.next_interrupt() & kAf) == kAf);
		CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 45, 9));
	}
	SECTION("a fixed minute, any second: the first second of that minute")
	{
		board.out(kMinutesAlarm, 0x47);
		board.out(kSecondsAlarm, 0xc0);
		CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 47, 0));
	}
	SECTION("any minute, a fixed second already past: the next minute")
	{
		board.out(kSecondsAlarm, 0x05);
		CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 46, 5));
	}
	SECTION("a fixed hour, any minute and second: from the top of that hour")
	{
		board.out(kHoursAlarm, 0x15);
		board.out(kSecondsAlarm, 0xff);
		CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 15, 0, 0));
	}
}

TEST_CASE("rtc irq: alarm bytes compare in the data mode, and a byte no time has never matches", "[rtc]")
{
	Board board;
	SECTION("binary, 12-hour: 1 PM is 0x81")
	{
		board.out(kRegisterB, kBinary);
		board.out(kHoursAlarm, 0x81);
		board.out(kMinutesAlarm, 50);
		board.out(kSecondsAlarm, 0);
		board.out(kRegisterB, kBinary | kAie);
		CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 50, 0));
	}
	SECTION("BCD 0x5a is no second")
	{
		board.out(kHoursAlarm, 0xff);
		board.out(kMinutesAlarm, 0xff);
		board.out(kSecondsAlarm, 0x5a);
		board.out(kRegisterB, k24Hour | kAie);
		CHECK_FALSE(board.timer->deadline);
		board.run_until(kStart + 200 * kSecond);
		CHECK((board.in(kRegisterC)&kAf) == 0);
		CHECK(board.line->rises.empty());
	}
}

TEST_CASE("rtc irq: the alarm follows the guest's time, not the host's", "[rtc]")
{
	Board board;
	board.out(kRegisterB, k24Hour | kSet);
	board.out(kHoursAlarm, 0x03);
	board.out(kMinutesAlarm, 0x04);
	board.out(kSecondsAlarm, 0x08);
	board.out(kHours, 0x03);
	board.out(kMinutes, 0x04);
	board.out(kSeconds, 0x05);
	// SET held the alarm back; releasing it starts the clock at 03:04:05
	// at this host second (.25 into it).
	board.out(kRegisterB, k24Hour | kAie);
	CHECK(board.timer->deadline == utc_ns(2026, 11, 22, 13, 45, 10));
}

TEST_CASE("rtc irq: SET stops update and alarm interrupts and clears UIE", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kSecondsAlarm, 0xff);
	board.out(kMinutesAlarm, 0xff);
	board.out(kHoursAlarm, 0xff);
	board.out(kRegisterB, k24Hour | kSet | kUie | kAie);
	CHECK(board.in(kRegisterB) == (k24Hour | kSet | kAie));
	CHECK_FALSE(board.timer->deadline);
	board.run_until(kStart + 5 * kSecond);
	CHECK(board.in(kRegisterC) == 0x00);
	board.out(kRegisterB, k24Hour | kAie);
	CHECK(board.next_interrupt() == (kIrqf | kAf | kUf));
	CHECK(board.line->rises.back() == kStart - kSecond / 4 + 6 * kSecond);
}

TEST_CASE("rtc irq: PIE at the rate register A selects, in phase with the second", "[rtc]")
{
	Board board;
	board.out(kRegisterA, k2Hz);
	board.out(kRegisterB, k24Hour | kPie);
	CHECK(board.timer->deadline == kStart + kSecond / 4);  // xx:07.5
	std::vector<int64_t> expected;
	for (int tick = 1; tick <= 6; tick++) {
		// Every other tick is also a second boundary: UF, not enabled.
		CHECK((board.next_interrupt() & ~kUf) == (kIrqf | kPf));
		expected.push_back(kStart + kSecond / 4 + (tick - 1) * kSecond / 2);
	}
	CHECK(board.line->rises == expected);
}

TEST_CASE("rtc irq: 8192 Hz is the fastest rate, one wake-up per tick acked", "[rtc]")
{
	Board board;
	board.out(kRegisterA, k8192Hz);
	board.out(kRegisterB, k24Hour | kPie);
	// 122.0703125 us a tick, rounded up to whole ns.
	CHECK(board.timer->deadline == kStart + 122'071);
	const int64_t end = kStart + kSecond;
	int acked = 0;
	while (board.timer->deadline && *board.timer->deadline <= end) {
		board.next_interrupt();
		acked++;
	}
	CHECK(acked == 8192);
	CHECK(board.timer->requests <= 8192 + 1);
}

TEST_CASE("rtc irq: rate selects 1 and 2 repeat 8 and 9 (256 and 128 Hz)", "[rtc]")
{
	Board low;
	low.out(kRegisterA, k256HzLow);
	low.out(kRegisterB, k24Hour | kPie);
	Board high;
	high.out(kRegisterA, k256HzHigh);
	high.out(kRegisterB, k24Hour | kPie);
	REQUIRE(low.timer->deadline);
	CHECK(low.timer->deadline == high.timer->deadline);
	CHECK(*low.timer->deadline - kStart == 3'906'250);  // 1/256 s
}

TEST_CASE("rtc irq: a guest access delivers what the timer has not yet", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kRegisterB, k24Hour | kUie);
	board.now += 2 * kSecond;  // the loop is late: the timer has not fired
	board.in(kSeconds);
	CHECK(board.line->high);
	CHECK(board.line->rises.back() == kStart + 2 * kSecond);
	CHECK_FALSE(board.timer->deadline);
}

TEST_CASE("rtc irq: a wake-up before the deadline raises nothing and waits again", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kRegisterB, k24Hour | kUie);
	const int64_t deadline = *board.timer->deadline;
	board.now = deadline - 1000;  // the host's wall clock stepped back meanwhile
	board.timer->deadline.reset();
	board.rtc.timer_expired();
	CHECK_FALSE(board.line->high);
	CHECK(board.timer->deadline == deadline);
}

TEST_CASE("rtc irq: UIP is set in the last 244 us before each update, never while SET holds", "[rtc]")
{
	Board board;
	const int64_t second = utc_ns(2026, 11, 22, 13, 45, 8);
	board.now = second - 244'141;
	CHECK((board.in(kRegisterA)&0x80) == 0);
	board.now = second - 244'140;
	CHECK(board.in(kRegisterA) == (0x80 | 0x26));
	board.now = second - 1;
	CHECK((board.in(kRegisterA)&0x80) == 0x80);
	board.out(kRegisterB, k24Hour | kSet);
	CHECK((board.in(kRegisterA)&0x80) == 0);
	board.out(kRegisterB, k24Hour);
	board.now = second;
	CHECK((board.in(kRegisterA)&0x80) == 0);
}

TEST_CASE("rtc irq: the interrupts raised are counted", "[rtc]")
{
	Board board;
	board.out(kRegisterA, kNoPeriodic);
	board.out(kRegisterB, k24Hour | kUie);
	board.next_interrupt();
	board.next_interrupt();
	CHECK(board.rtc.interrupts_raised() == 2);
}
