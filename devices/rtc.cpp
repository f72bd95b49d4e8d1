#include "devices/rtc.h"

#include <algorithm>

namespace kairos::devices {

namespace {

constexpr uint64_t kIndexPort = 0;
constexpr uint64_t kDataPort = 1;
// Bit 7 of the index port gates NMI on the PC, not the RTC's address.
constexpr uint8_t kIndexMask = 0x7f;

// Register indices (MC146818A "Address Map"); 0x32 is the PC convention
// for the century, which ACPI's FADT CENTURY field points at.
constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kSecondsAlarm = 0x01;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kMinutesAlarm = 0x03;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kHoursAlarm = 0x05;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kRegisterA = 0x0a;
constexpr uint8_t kRegisterB = 0x0b;
constexpr uint8_t kRegisterC = 0x0c;
constexpr uint8_t kRegisterD = 0x0d;
constexpr uint8_t kCentury = Rtc::kCenturyIndex;

constexpr int64_t kNanosecondsPerSecond = 1'000'000'000;
constexpr int64_t kSecondsPerMinute = 60;
constexpr int64_t kSecondsPerHour = 3600;
constexpr int64_t kSecondsPerDay = 86'400;

// The time base: a 32.768 kHz crystal (register A's DV = 010, the only one
// emulated). Its divider chain's last stage is the 1 Hz update cycle and the
// periodic interrupt taps an earlier stage, so periodic ticks stay in phase
// with the second (MC146818A "Oscillator", "Divider Stages").
constexpr int64_t kTimeBaseHz = 32'768;

// Register A (MC146818A "Register A"). UIP goes high 244 us (8 cycles of the
// time base) before an update cycle and stays high until it ends ("Update
// Cycle", t_BUC); the update itself is instant here. RS3-RS0 select the
// periodic rate. The power-on value selects the 32.768 kHz time base
// (DV = 010) and a 1024 Hz periodic rate (RS = 0110).
constexpr uint8_t kUpdateInProgress = 0x80;
constexpr int64_t kUpdateWarningNs = 8 * kNanosecondsPerSecond / kTimeBaseHz;
constexpr uint8_t kRateSelect = 0x0f;
constexpr uint8_t kRegisterADefault = 0x26;

// Register B (MC146818A "Register B"). SQWE and DSE are kept but do
// nothing: there is no SQW pin, and the clock keeps UTC.
constexpr uint8_t kSet = 0x80;  // halt updates while the time is set
constexpr uint8_t kPeriodicInterruptEnable = 0x40;
constexpr uint8_t kAlarmInterruptEnable = 0x20;
constexpr uint8_t kUpdateInterruptEnable = 0x10;
constexpr uint8_t kInterruptEnables = 0x70;  // PIE, AIE, UIE: same bits as PF, AF, UF in C
constexpr uint8_t kBinary = 0x04;            // DM: binary, else BCD
constexpr uint8_t k24Hour = 0x02;
// 24-hour BCD, as PC firmware leaves it.
constexpr uint8_t kRegisterBDefault = k24Hour;

// Register C (MC146818A "Register C"): IRQF = PF.PIE + AF.AIE + UF.UIE.
constexpr uint8_t kInterruptRequest = 0x80;  // IRQF
constexpr uint8_t kPeriodicFlag = 0x40;      // PF
constexpr uint8_t kAlarmFlag = 0x20;         // AF
constexpr uint8_t kUpdateEnded = 0x10;       // UF

// Register D: VRT, the battery is good and RAM and time are valid.
constexpr uint8_t kValidRamAndTime = 0x80;

// 12-hour mode: bit 7 of the hours registers is PM.
constexpr uint8_t kPm = 0x80;

// An alarm byte with both top bits set matches every value ("don't care",
// C0-FF; MC146818A "Interrupts", alarm interrupt).
constexpr uint8_t kDontCare = 0xc0;

int from_bcd(uint8_t value)
{
	return (value >> 4) * 10 + (value & 0x0f);
}

uint8_t to_bcd(int value)
{
	return static_cast<uint8_t>(((value / 10) % 10) << 4 | (value % 10));
}

// 1 (Sunday) to 7, computed from the date so that it is always consistent.
int weekday(struct tm time)
{
	timegm(&time);  // normalizes the fields and fills in tm_wday
	return time.tm_wday + 1;
}

struct timespec realtime_now()
{
	struct timespec now = {};
	clock_gettime(CLOCK_REALTIME, &now);
	return now;
}

// Division rounding toward minus infinity, so that times before the epoch
// (a host clock set far back) still fall in the right second.
int64_t floor_div(int64_t value, int64_t divisor)
{
	int64_t quotient = value / divisor;
	return (value % divisor != 0 && value < 0) ? quotient - 1 : quotient;
}

int64_t floor_mod(int64_t value, int64_t divisor)
{
	return value - floor_div(value, divisor) * divisor;
}

int64_t host_second(int64_t now)
{
	return floor_div(now, kNanosecondsPerSecond);
}

// Time-base cycles from the epoch to `ns`, rounded down. Seconds and the
// fraction are scaled apart: ns * 32768 would overflow.
int64_t time_base_cycles(int64_t ns)
{
	return host_second(ns) * kTimeBaseHz +
	       floor_mod(ns, kNanosecondsPerSecond) * kTimeBaseHz / kNanosecondsPerSecond;
}

// The first ns at which time_base_cycles reaches `cycles`.
int64_t time_base_ns(int64_t cycles)
{
	const int64_t fraction = floor_mod(cycles, kTimeBaseHz);
	return floor_div(cycles, kTimeBaseHz) * kNanosecondsPerSecond +
	       (fraction * kNanosecondsPerSecond + kTimeBaseHz - 1) / kTimeBaseHz;
}

// Time-base cycles per periodic tick for RS3-RS0, 0 when off (MC146818A
// "Periodic Interrupt Rate" table, 32.768 kHz column): RS 1 and 2 repeat RS
// 8 and 9 (256 and 128 Hz); RS 3 to 15 run from 8192 Hz down to 2 Hz.
int64_t periodic_divisor(uint8_t register_a)
{
	const int rate = register_a & kRateSelect;
	if (rate == 0)
		return 0;
	if (rate <= 2)
		return int64_t{1} << (rate + 6);
	return int64_t{1} << (rate - 1);
}

bool alarm_matches(uint8_t alarm, uint8_t time_register)
{
	return (alarm & kDontCare) == kDontCare || alarm == time_register;
}

}  // namespace

Rtc::Rtc(Clock clock, std::shared_ptr<IrqLine> irq, std::shared_ptr<DeviceTimer> timer)
	: clock_(clock ? std::move(clock) : Clock(realtime_now)), irq_(std::move(irq)), timer_(std::move(timer)),
	  register_a_(kRegisterADefault), register_b_(kRegisterBDefault), events_until_(now_ns())
{
}

void Rtc::read(uint64_t offset, std::span<uint8_t> data)
{
	std::lock_guard lock(mutex_);
	const int64_t now = now_ns();
	catch_up(now);
	for (size_t i = 0; i < data.size(); i++) {
		switch (offset + i) {
		case kDataPort:
			data[i] = read_register(index_, now);
			break;
		case kIndexPort:  // write-only on the PC; reads float high
		default:
			data[i] = 0xff;
			break;
		}
	}
	update_line();
	reschedule(now);
}

void Rtc::write(uint64_t offset, std::span<const uint8_t> data)
{
	std::lock_guard lock(mutex_);
	const int64_t now = now_ns();
	catch_up(now);
	// "outw %ax, $0x70" is a common idiom: the index, then the data.
	for (size_t i = 0; i < data.size(); i++) {
		if (offset + i == kIndexPort)
			index_ = data[i] & kIndexMask;
		else if (offset + i == kDataPort)
			write_register(index_, data[i], now);
	}
	update_line();
	reschedule(now);
}

void Rtc::timer_expired()
{
	std::lock_guard lock(mutex_);
	armed_for_.reset();  // a timerfd expires once
	const int64_t now = now_ns();
	catch_up(now);
	update_line();
	reschedule(now);
}

uint64_t Rtc::interrupts_raised() const
{
	std::lock_guard lock(mutex_);
	return interrupts_raised_;
}

int64_t Rtc::now_ns() const
{
	const struct timespec now = clock_();
	return static_cast<int64_t>(now.tv_sec) * kNanosecondsPerSecond + now.tv_nsec;
}

uint8_t Rtc::read_register(uint8_t index, int64_t now)
{
	switch (index) {
	case kSeconds:
		return encode(guest_time(now).tm_sec);
	case kMinutes:
		return encode(guest_time(now).tm_min);
	case kHours:
		return encode_hour(guest_time(now).tm_hour);
	case kDayOfWeek:
		return encode(weekday(guest_time(now)));
	case kDayOfMonth:
		return encode(guest_time(now).tm_mday);
	case kMonth:
		return encode(guest_time(now).tm_mon + 1);
	case kYear:
		return encode((guest_time(now).tm_year + 1900) % 100);
	case kCentury:
		return encode((guest_time(now).tm_year + 1900) / 100);
	case kRegisterA:
		return static_cast<uint8_t>(register_a_ | (update_in_progress(now) ? kUpdateInProgress : 0));
	case kRegisterB:
		return register_b_;
	case kRegisterC: {
		// Reading C clears every flag, and with them IRQF and the
		// interrupt request (MC146818A "Register C").
		uint8_t value = flags_;
		if (interrupt_request() != 0)
			value |= kInterruptRequest;
		flags_ = 0;
		return value;
	}
	case kRegisterD:
		return kValidRamAndTime;
	default:
		return cmos_[index];
	}
}

void Rtc::write_register(uint8_t index, uint8_t value, int64_t now)
{
	switch (index) {
	case kSeconds:
	case kMinutes:
	case kHours:
	case kDayOfWeek:
	case kDayOfMonth:
	case kMonth:
	case kYear:
	case kCentury:
		if (register_b_ & kSet) {
			set_time_field(index, value);
		} else {
			// A lone write changes one field of the running time. One
			// host reading serves both steps, so a second boundary in
			// between cannot skew the result.
			set_time_ = live_time(host_second(now));
			set_time_field(index, value);
			commit_time(host_second(now));
		}
		break;
	case kRegisterA:
		register_a_ = value & ~kUpdateInProgress;
		break;
	case kRegisterB: {
		const bool was_set = register_b_ & kSet;
		const bool set = value & kSet;
		// SET stops the update cycle, so it clears UIE (MC146818A
		// "Register B", UIE); catch_up counts no update or alarm while
		// it holds.
		if (set)
			value &= ~kUpdateInterruptEnable;
		if (set && !was_set)
			set_time_ = live_time(host_second(now));
		register_b_ = value;
		if (was_set && !set)
			commit_time(host_second(now));
		break;
	}
	case kRegisterC:
	case kRegisterD:
		break;  // read-only
	default:
		// The NVRAM, and the alarm registers: catch_up and
		// next_alarm_after read them from here.
		cmos_[index] = value;
		break;
	}
}

void Rtc::catch_up(int64_t now)
{
	if (now <= events_until_) {
		// Nothing new; or the host clock stepped back, and events count
		// from the new time on.
		events_until_ = now;
		return;
	}
	const int64_t from = events_until_;
	events_until_ = now;

	// An update cycle ends at every second boundary and then compares the
	// new time with the alarm; none runs while SET holds (MC146818A
	// "Update Cycle"). UF and AF are set whether or not their interrupts
	// are enabled ("Register C").
	const int64_t first_second = host_second(from);
	const int64_t last_second = host_second(now);
	if (!(register_b_ & kSet) && last_second > first_second) {
		flags_ |= kUpdateEnded;
		if (!(flags_ & kAlarmFlag)) {
			auto alarm = next_alarm_after(first_second + offset_seconds_);
			if (alarm && *alarm <= last_second + offset_seconds_)
				flags_ |= kAlarmFlag;
		}
	}
	// PF is set at each tick of the selected divider tap, enabled or not.
	const int64_t divisor = periodic_divisor(register_a_);
	if (divisor != 0 && floor_div(time_base_cycles(now), divisor) > floor_div(time_base_cycles(from), divisor))
		flags_ |= kPeriodicFlag;
}

uint8_t Rtc::interrupt_request() const
{
	return flags_ & register_b_ & kInterruptEnables;
}

void Rtc::update_line()
{
	const bool high = interrupt_request() != 0;
	if (high == line_high_)
		return;
	line_high_ = high;
	if (high)
		interrupts_raised_++;
	if (irq_)
		irq_->set_level(high);
}

void Rtc::reschedule(int64_t now)
{
	if (!timer_)
		return;
	// While IRQF holds the line high, a new event only adds a flag the
	// guest reads with the ones already there: no wake-up is needed
	// until it reads register C, which lowers the line.
	const std::optional<int64_t> deadline = line_high_ ? std::nullopt : next_interrupt(now);
	if (deadline == armed_for_)
		return;
	armed_for_ = deadline;
	if (deadline)
		timer_->arm(std::chrono::nanoseconds(*deadline - now));
	else
		timer_->arm(std::nullopt);
}

std::optional<int64_t> Rtc::next_interrupt(int64_t now) const
{
	std::optional<int64_t> next;
	auto consider = [&next](int64_t time) {
		if (!next || time < *next)
			next = time;
	};
	const bool updating = !(register_b_ & kSet);
	const int64_t second = host_second(now);
	if (updating && (register_b_ & kUpdateInterruptEnable))
		consider((second + 1) * kNanosecondsPerSecond);
	if (updating && (register_b_ & kAlarmInterruptEnable)) {
		if (auto alarm = next_alarm_after(second + offset_seconds_))
			consider((*alarm - offset_seconds_) * kNanosecondsPerSecond);
	}
	const int64_t divisor = periodic_divisor(register_a_);
	if ((register_b_ & kPeriodicInterruptEnable) && divisor != 0)
		consider(time_base_ns((floor_div(time_base_cycles(now), divisor) + 1) * divisor));
	return next;
}

std::optional<int64_t> Rtc::next_alarm_after(int64_t guest_second) const
{
	// The chip compares bytes: an alarm register matches the time register
	// it would equal, in the current data mode (BCD or binary, 12 or 24
	// hours), so a byte that mode never produces never matches.
	std::array<bool, 24> hours{};
	std::array<bool, 60> minutes{};
	std::array<bool, 60> seconds{};
	for (int hour = 0; hour < 24; hour++)
		hours[hour] = alarm_matches(cmos_[kHoursAlarm], encode_hour(hour));
	for (int value = 0; value < 60; value++) {
		minutes[value] = alarm_matches(cmos_[kMinutesAlarm], encode(value));
		seconds[value] = alarm_matches(cmos_[kSecondsAlarm], encode(value));
	}
	auto any = [](const auto &matches) { return std::find(matches.begin(), matches.end(), true) != matches.end(); };
	if (!any(hours) || !any(minutes) || !any(seconds))
		return std::nullopt;

	// The alarm repeats daily at most, so the next 24 hours hold the
	// answer; the hour after them is the current one, tomorrow.
	const int64_t midnight = floor_div(guest_second, kSecondsPerDay) * kSecondsPerDay;
	const int64_t time_of_day = guest_second - midnight;
	const int64_t first_hour = time_of_day / kSecondsPerHour;
	const int64_t first_minute = time_of_day % kSecondsPerHour / kSecondsPerMinute;
	for (int64_t hour = first_hour; hour <= first_hour + 24; hour++) {
		if (!hours[static_cast<size_t>(hour % 24)])
			continue;
		for (int64_t minute = hour == first_hour ? first_minute : 0; minute < 60; minute++) {
			if (!minutes[static_cast<size_t>(minute)])
				continue;
			const bool this_minute = hour == first_hour && minute == first_minute;
			for (int64_t second = this_minute ? time_of_day % kSecondsPerMinute + 1 : 0; second < 60;
			     second++) {
				if (seconds[static_cast<size_t>(second)])
					return midnight + hour * kSecondsPerHour + minute * kSecondsPerMinute + second;
			}
		}
	}
	return std::nullopt;
}

bool Rtc::update_in_progress(int64_t now) const
{
	return !(register_b_ & kSet) &&
	       floor_mod(now, kNanosecondsPerSecond) >= kNanosecondsPerSecond - kUpdateWarningNs;
}

struct tm Rtc::guest_time(int64_t now) const
{
	if (register_b_ & kSet)
		return set_time_;
	return live_time(host_second(now));
}

struct tm Rtc::live_time(time_t host) const
{
	time_t now = host + offset_seconds_;
	struct tm time = {};
	gmtime_r(&now, &time);
	return time;
}

void Rtc::set_time_field(uint8_t index, uint8_t value)
{
	switch (index) {
	case kSeconds:
		set_time_.tm_sec = decode(value);
		break;
	case kMinutes:
		set_time_.tm_min = decode(value);
		break;
	case kHours:
		set_time_.tm_hour = decode_hour(value);
		break;
	case kDayOfMonth:
		set_time_.tm_mday = decode(value);
		break;
	case kMonth:
		set_time_.tm_mon = decode(value) - 1;
		break;
	case kYear: {
		int century = (set_time_.tm_year + 1900) / 100;
		set_time_.tm_year = century * 100 + decode(value) - 1900;
		break;
	}
	case kCentury: {
		int year_of_century = (set_time_.tm_year + 1900) % 100;
		set_time_.tm_year = decode(value) * 100 + year_of_century - 1900;
		break;
	}
	case kDayOfWeek:
	default:
		// The weekday follows from the date, so a write is dropped.
		break;
	}
}

void Rtc::commit_time(time_t host)
{
	// timegm normalizes out-of-range fields (the 31st of February is the
	// 3rd of March), which is as good an answer as any to a bad write.
	offset_seconds_ = static_cast<int64_t>(timegm(&set_time_)) - host;
}

uint8_t Rtc::encode(int value) const
{
	return (register_b_ & kBinary) ? static_cast<uint8_t>(value) : to_bcd(value);
}

int Rtc::decode(uint8_t value) const
{
	return (register_b_ & kBinary) ? value : from_bcd(value);
}

uint8_t Rtc::encode_hour(int hour) const
{
	if (register_b_ & k24Hour)
		return encode(hour);
	// 12-hour mode: 12 AM is midnight, 12 PM noon.
	int twelve_hour = hour % 12 == 0 ? 12 : hour % 12;
	return static_cast<uint8_t>(encode(twelve_hour) | (hour >= 12 ? kPm : 0));
}

int Rtc::decode_hour(uint8_t value) const
{
	if (register_b_ & k24Hour)
		return decode(value);
	return decode(static_cast<uint8_t>(value & ~kPm)) % 12 + ((value & kPm) ? 12 : 0);
}

}  // namespace kairos::devices
