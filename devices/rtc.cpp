#include "devices/rtc.h"

namespace kairos::devices {

namespace {

constexpr uint64_t kIndexPort = 0;
constexpr uint64_t kDataPort = 1;
// Bit 7 of the index port gates NMI on the PC, not the RTC's address.
constexpr uint8_t kIndexMask = 0x7f;

// Register indices (MC146818A "Address Map"); 0x32 is the PC convention
// for the century, which ACPI's FADT CENTURY field points at.
constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kRegisterA = 0x0a;
constexpr uint8_t kRegisterB = 0x0b;
constexpr uint8_t kRegisterC = 0x0c;
constexpr uint8_t kRegisterD = 0x0d;
constexpr uint8_t kCentury = Rtc::kCenturyIndex;

// Register A: UIP (bit 7) reads 0, since the time is computed at each read
// and never mid-update. The power-on value selects the 32.768 kHz time base
// (DV = 010) and a 1024 Hz periodic rate (RS = 0110).
constexpr uint8_t kUpdateInProgress = 0x80;
constexpr uint8_t kRegisterADefault = 0x26;

// Register B.
constexpr uint8_t kSet = 0x80;               // halt updates while the time is set
constexpr uint8_t kInterruptEnables = 0x70;  // PIE, AIE, UIE: same bits as PF, AF, UF in C
constexpr uint8_t kUpdateInterruptEnable = 0x10;
constexpr uint8_t kBinary = 0x04;  // DM: binary, else BCD
constexpr uint8_t k24Hour = 0x02;
// 24-hour BCD, as PC firmware leaves it.
constexpr uint8_t kRegisterBDefault = k24Hour;

// Register C.
constexpr uint8_t kInterruptRequest = 0x80;  // IRQF
constexpr uint8_t kUpdateEnded = 0x10;       // UF

// Register D: VRT, the battery is good and RAM and time are valid.
constexpr uint8_t kValidRamAndTime = 0x80;

// 12-hour mode: bit 7 of the hours registers is PM.
constexpr uint8_t kPm = 0x80;

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

}  // namespace

Rtc::Rtc(Clock clock)
	: clock_(clock ? std::move(clock) : Clock(realtime_now)), register_a_(kRegisterADefault),
	  register_b_(kRegisterBDefault), flags_read_second_(host_seconds())
{
}

void Rtc::read(uint64_t offset, std::span<uint8_t> data)
{
	std::lock_guard lock(mutex_);
	for (size_t i = 0; i < data.size(); i++) {
		switch (offset + i) {
		case kDataPort:
			data[i] = read_register(index_);
			break;
		case kIndexPort:  // write-only on the PC; reads float high
		default:
			data[i] = 0xff;
			break;
		}
	}
}

void Rtc::write(uint64_t offset, std::span<const uint8_t> data)
{
	std::lock_guard lock(mutex_);
	// "outw %ax, $0x70" is a common idiom: the index, then the data.
	for (size_t i = 0; i < data.size(); i++) {
		if (offset + i == kIndexPort)
			index_ = data[i] & kIndexMask;
		else if (offset + i == kDataPort)
			write_register(index_, data[i]);
	}
}

uint8_t Rtc::read_register(uint8_t index)
{
	switch (index) {
	case kSeconds:
		return encode(guest_time().tm_sec);
	case kMinutes:
		return encode(guest_time().tm_min);
	case kHours:
		return encode_hour(guest_time().tm_hour);
	case kDayOfWeek:
		return encode(weekday(guest_time()));
	case kDayOfMonth:
		return encode(guest_time().tm_mday);
	case kMonth:
		return encode(guest_time().tm_mon + 1);
	case kYear:
		return encode((guest_time().tm_year + 1900) % 100);
	case kCentury:
		return encode((guest_time().tm_year + 1900) / 100);
	case kRegisterA:
		return register_a_;
	case kRegisterB:
		return register_b_;
	case kRegisterC: {
		// Reading C clears it. UF is due when an update cycle, one per
		// second and none while SET holds, has ended since the last read.
		// We never set PF or AF: no periodic or alarm interrupts.
		time_t now = host_seconds();
		uint8_t flags = 0;
		if (!(register_b_ & kSet) && now != flags_read_second_)
			flags |= kUpdateEnded;
		flags_read_second_ = now;
		if (flags & register_b_ & kInterruptEnables)
			flags |= kInterruptRequest;
		return flags;
	}
	case kRegisterD:
		return kValidRamAndTime;
	default:
		return cmos_[index];
	}
}

void Rtc::write_register(uint8_t index, uint8_t value)
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
			time_t host = host_seconds();
			set_time_ = live_time(host);
			set_time_field(index, value);
			commit_time(host);
		}
		break;
	case kRegisterA:
		register_a_ = value & ~kUpdateInProgress;
		break;
	case kRegisterB: {
		const bool was_set = register_b_ & kSet;
		const bool set = value & kSet;
		if (set && !was_set) {
			set_time_ = live_time(host_seconds());
			// Setting SET clears UIE (MC146818A register B, bit 4).
			value &= ~kUpdateInterruptEnable;
		}
		register_b_ = value;
		if (was_set && !set) {
			time_t host = host_seconds();
			commit_time(host);
			flags_read_second_ = host;  // no update cycle ran meanwhile
		}
		break;
	}
	case kRegisterC:
	case kRegisterD:
		break;  // read-only
	default:
		cmos_[index] = value;
		break;
	}
}

time_t Rtc::host_seconds() const
{
	return clock_().tv_sec;
}

struct tm Rtc::guest_time() const
{
	if (register_b_ & kSet)
		return set_time_;
	return live_time(host_seconds());
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
