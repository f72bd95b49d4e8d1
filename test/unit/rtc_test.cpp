#include <catch2/catch.hpp>

#include <ctime>

#include "cmos_ports.h"
#include "devices/bus.h"
#include "devices/rtc.h"

using kairos::devices::Bus;
using kairos::devices::Rtc;

namespace {

constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kAlarmSeconds = 0x01;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kAlarmMinutes = 0x03;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kAlarmHours = 0x05;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kRegisterA = 0x0a;
constexpr uint8_t kRegisterB = 0x0b;
constexpr uint8_t kRegisterC = 0x0c;
constexpr uint8_t kRegisterD = 0x0d;
constexpr uint8_t kCentury = 0x32;

constexpr uint8_t kSet = 0x80;
constexpr uint8_t kUpdateInterruptEnable = 0x10;
constexpr uint8_t kBinary = 0x04;
constexpr uint8_t k24Hour = 0x02;

time_t utc(int year, int month, int day, int hour, int minute, int second)
{
	struct tm time = {};
	time.tm_year = year - 1900;
	time.tm_mon = month - 1;
	time.tm_mday = day;
	time.tm_hour = hour;
	time.tm_min = minute;
	time.tm_sec = second;
	return timegm(&time);
}

// An RTC running from a host clock the test moves by hand.
struct Cmos {
	struct timespec now = {utc(2026, 11, 22, 13, 45, 7), 250'000'000};
	Rtc rtc{[this] { return now; }};

	uint8_t in(uint8_t index) { return kairos::test::cmos_read(rtc, index); }
	void out(uint8_t index, uint8_t value) { kairos::test::cmos_write(rtc, index, value); }
};

}  // namespace

TEST_CASE("rtc: reads the injected time in BCD by default", "[rtc]")
{
	Cmos cmos;
	CHECK(cmos.in(kRegisterB) == k24Hour);
	CHECK(cmos.in(kSeconds) == 0x07);
	CHECK(cmos.in(kMinutes) == 0x45);
	CHECK(cmos.in(kHours) == 0x13);
	CHECK(cmos.in(kDayOfWeek) == 0x01);  // 2026-11-22 is a Sunday
	CHECK(cmos.in(kDayOfMonth) == 0x22);
	CHECK(cmos.in(kMonth) == 0x11);
	CHECK(cmos.in(kYear) == 0x26);
	CHECK(cmos.in(kCentury) == 0x20);
}

TEST_CASE("rtc: reads the injected time in binary when DM is set", "[rtc]")
{
	Cmos cmos;
	cmos.out(kRegisterB, k24Hour | kBinary);
	CHECK(cmos.in(kSeconds) == 7);
	CHECK(cmos.in(kMinutes) == 45);
	CHECK(cmos.in(kHours) == 13);
	CHECK(cmos.in(kDayOfWeek) == 1);
	CHECK(cmos.in(kDayOfMonth) == 22);
	CHECK(cmos.in(kMonth) == 11);
	CHECK(cmos.in(kYear) == 26);
	CHECK(cmos.in(kCentury) == 20);
}

TEST_CASE("rtc: 12-hour mode puts PM in bit 7", "[rtc]")
{
	Cmos cmos;
	cmos.out(kRegisterB, 0);         // 12-hour, BCD
	CHECK(cmos.in(kHours) == 0x81);  // 1 PM
	cmos.out(kRegisterB, kBinary);
	CHECK(cmos.in(kHours) == (0x80 | 1));

	cmos.out(kRegisterB, 0);
	cmos.now.tv_sec = utc(2026, 11, 22, 0, 30, 0);
	CHECK(cmos.in(kHours) == 0x12);  // 12 AM
	cmos.now.tv_sec = utc(2026, 11, 22, 12, 30, 0);
	CHECK(cmos.in(kHours) == 0x92);  // 12 PM
	cmos.now.tv_sec = utc(2026, 11, 22, 11, 30, 0);
	CHECK(cmos.in(kHours) == 0x11);  // 11 AM

	// Writes in 12-hour mode decode the same way.
	cmos.out(kHours, 0x92);
	cmos.out(kRegisterB, k24Hour);
	CHECK(cmos.in(kHours) == 0x12);
	cmos.out(kRegisterB, 0);
	cmos.out(kHours, 0x12);
	cmos.out(kRegisterB, k24Hour);
	CHECK(cmos.in(kHours) == 0x00);
}

TEST_CASE("rtc: the time follows the host clock", "[rtc]")
{
	Cmos cmos;
	cmos.now.tv_sec += 60 * 60 * 24 * 40 + 3;  // 40 days and 3 seconds later
	CHECK(cmos.in(kSeconds) == 0x10);
	CHECK(cmos.in(kMonth) == 0x01);
	CHECK(cmos.in(kDayOfMonth) == 0x01);
	CHECK(cmos.in(kYear) == 0x27);
	CHECK(cmos.in(kDayOfWeek) == 0x06);  // 2027-01-01 is a Friday
}

TEST_CASE("rtc: status registers A and D", "[rtc]")
{
	Cmos cmos;
	CHECK(cmos.in(kRegisterA) == 0x26);  // UIP clear, 32.768 kHz, 1024 Hz
	cmos.out(kRegisterA, 0xa6);          // UIP is read-only
	CHECK(cmos.in(kRegisterA) == 0x26);
	CHECK(cmos.in(kRegisterD) == 0x80);
	cmos.out(kRegisterD, 0x00);
	CHECK(cmos.in(kRegisterD) == 0x80);
}

TEST_CASE("rtc: register C reports an update once and clears on read", "[rtc]")
{
	Cmos cmos;
	cmos.out(kRegisterA, 0x20);          // no periodic flag in the way (RS = 0)
	CHECK(cmos.in(kRegisterC) == 0x00);  // no update since power-on
	cmos.now.tv_sec += 1;
	CHECK(cmos.in(kRegisterC) == 0x10);  // UF
	CHECK(cmos.in(kRegisterC) == 0x00);
	cmos.now.tv_nsec = 900'000'000;  // same second: no update
	CHECK(cmos.in(kRegisterC) == 0x00);

	cmos.out(kRegisterB, k24Hour | kUpdateInterruptEnable);
	cmos.now.tv_sec += 5;
	CHECK(cmos.in(kRegisterC) == 0x90);  // IRQF joins an enabled flag
	CHECK(cmos.in(kRegisterC) == 0x00);
	cmos.out(kRegisterC, 0xff);  // read-only
	CHECK(cmos.in(kRegisterC) == 0x00);
}

TEST_CASE("rtc: setting the time moves an offset from the host clock", "[rtc]")
{
	Cmos cmos;
	const time_t host_before = cmos.now.tv_sec;

	// What Linux's mc146818_set_time does: SET, all fields, then release.
	cmos.out(kRegisterB, k24Hour | kSet | kUpdateInterruptEnable);
	CHECK((cmos.in(kRegisterB)&kUpdateInterruptEnable) == 0);  // SET clears UIE
	cmos.out(kYear, 0x30);
	cmos.out(kMonth, 0x02);
	cmos.out(kDayOfMonth, 0x28);
	cmos.out(kHours, 0x03);
	cmos.out(kMinutes, 0x04);
	cmos.out(kSeconds, 0x05);
	cmos.out(kCentury, 0x20);
	cmos.now.tv_sec += 30;  // time stands still while SET holds
	CHECK(cmos.in(kSeconds) == 0x05);
	CHECK((cmos.in(kRegisterC)&0x30) == 0x00);  // no update or alarm; PF keeps ticking
	cmos.out(kRegisterB, k24Hour);

	CHECK(cmos.now.tv_sec == host_before + 30);  // the host clock is untouched
	CHECK(cmos.in(kCentury) == 0x20);
	CHECK(cmos.in(kYear) == 0x30);
	CHECK(cmos.in(kMonth) == 0x02);
	CHECK(cmos.in(kDayOfMonth) == 0x28);
	CHECK(cmos.in(kHours) == 0x03);
	CHECK(cmos.in(kMinutes) == 0x04);
	CHECK(cmos.in(kSeconds) == 0x05);
	CHECK(cmos.in(kDayOfWeek) == 0x05);  // 2030-02-28 is a Thursday

	// The guest clock keeps running from the new time.
	cmos.now.tv_sec += 86400 + 10;
	CHECK(cmos.in(kMonth) == 0x03);
	CHECK(cmos.in(kDayOfMonth) == 0x01);
	CHECK(cmos.in(kSeconds) == 0x15);

	// A second RTC on the same host clock still reads host time.
	Rtc other([&] { return cmos.now; });
	uint8_t index = kYear;
	other.write(0, {&index, 1});
	uint8_t year = 0;
	other.read(1, {&year, 1});
	CHECK(year == 0x26);
}

TEST_CASE("rtc: a lone write changes one field of the running time", "[rtc]")
{
	Cmos cmos;
	cmos.out(kMinutes, 0x50);
	CHECK(cmos.in(kMinutes) == 0x50);
	CHECK(cmos.in(kHours) == 0x13);
	CHECK(cmos.in(kSeconds) == 0x07);
	cmos.now.tv_sec += 2;
	CHECK(cmos.in(kSeconds) == 0x09);
	CHECK(cmos.in(kMinutes) == 0x50);

	cmos.out(kRegisterB, k24Hour | kBinary);
	cmos.out(kYear, 99);
	CHECK(cmos.in(kYear) == 99);
	CHECK(cmos.in(kCentury) == 20);
}

TEST_CASE("rtc: alarms and NVRAM are plain bytes", "[rtc]")
{
	Cmos cmos;
	cmos.out(kAlarmSeconds, 0x11);
	cmos.out(kAlarmMinutes, 0x22);
	cmos.out(kAlarmHours, 0xc0);  // "don't care"
	CHECK(cmos.in(kAlarmSeconds) == 0x11);
	CHECK(cmos.in(kAlarmMinutes) == 0x22);
	CHECK(cmos.in(kAlarmHours) == 0xc0);
	for (int index = 0x0e; index < 0x80; index++) {
		if (index == kCentury)
			continue;
		cmos.out(static_cast<uint8_t>(index), static_cast<uint8_t>(index ^ 0xa5));
	}
	bool all_kept = true;
	for (int index = 0x0e; index < 0x80; index++) {
		if (index == kCentury)
			continue;
		uint8_t expected = static_cast<uint8_t>(index ^ 0xa5);
		all_kept = all_kept && cmos.in(static_cast<uint8_t>(index)) == expected;
	}
	CHECK(all_kept);
	CHECK(cmos.in(kSeconds) == 0x07);  // the clock was not disturbed
}

TEST_CASE("rtc: index bit 7 is the NMI mask, not an address bit", "[rtc]")
{
	Cmos cmos;
	cmos.out(0x0e, 0x42);
	CHECK(cmos.in(0x8e) == 0x42);
	CHECK(cmos.in(0x80 | kSeconds) == 0x07);
	cmos.out(0xff, 0x99);
	CHECK(cmos.in(0x7f) == 0x99);
	for (int index = 0x80; index < 0x100; index++)
		cmos.in(static_cast<uint8_t>(index));
}

TEST_CASE("rtc: index port reads float and stray offsets are ignored", "[rtc]")
{
	Cmos cmos;
	uint8_t value = 0;
	cmos.rtc.read(0, {&value, 1});
	CHECK(value == 0xff);
	cmos.rtc.read(5, {&value, 1});
	CHECK(value == 0xff);
	value = 0x00;
	cmos.rtc.write(7, {&value, 1});
	CHECK(cmos.in(kSeconds) == 0x07);

	// "outw %ax, $0x70": index in the low byte, data in the high byte.
	uint8_t pair[2] = {0x40, 0x77};
	cmos.rtc.write(0, pair);
	CHECK(cmos.in(0x40) == 0x77);
}

TEST_CASE("rtc: registers through the bus at 0x70", "[rtc]")
{
	Bus bus;
	auto rtc = std::make_shared<Rtc>();  // the host's real clock
	REQUIRE(bus.add(0x70, 2, rtc).ok());
	uint8_t byte = kRegisterD;
	REQUIRE(bus.write(0x70, {&byte, 1}));
	REQUIRE(bus.read(0x71, {&byte, 1}));
	CHECK(byte == 0x80);
	byte = kCentury;
	REQUIRE(bus.write(0x70, {&byte, 1}));
	REQUIRE(bus.read(0x71, {&byte, 1}));
	CHECK(byte == 0x20);  // true until 2100
}
