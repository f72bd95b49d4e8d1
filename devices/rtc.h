// Rtc: the MC146818 CMOS real-time clock and its 128 bytes of NVRAM
// (Motorola MC146818A datasheet), enough for Linux's rtc-cmos driver and
// for hwclock.
//
// Register it on the I/O bus at the index port with length 2:
//	bus.add(layout::kPortRtc, layout::kRtcPortSize, rtc);
// Offset 0 (port 0x70) selects a register, offset 1 (port 0x71) reads or
// writes it.
//
// The time is computed from a host clock at each read, so there is never an
// update in progress. Guest writes to the time registers move an offset
// from the host clock, never the host clock itself, so "hwclock -w" then
// "hwclock -r" round-trips. The periodic, alarm and update interrupts are
// not raised (no IRQ 8): register C reports the update-ended flag when
// polled, but nothing drives a line.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <span>
#include <string>

#include "devices/bus.h"

namespace kairos::devices {

class Rtc : public BusDevice {
public:
	// The century register's CMOS index: not in the MC146818A, a PC
	// convention that ACPI's FADT CENTURY field points at.
	static constexpr uint8_t kCenturyIndex = 0x32;
	// The host time the guest's clock runs from; tests inject their own.
	using Clock = std::function<struct timespec()>;

	// An empty clock means CLOCK_REALTIME. The RTC keeps UTC, as Linux
	// expects on a machine that does not dual-boot Windows.
	explicit Rtc(Clock clock = {});

	std::string name() const override { return "rtc"; }
	void read(uint64_t offset, std::span<uint8_t> data) override;
	void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
	// All below require mutex_.
	uint8_t read_register(uint8_t index);
	void write_register(uint8_t index, uint8_t value);
	time_t host_seconds() const;
	// The guest's broken-down time: live, or as being set while SET holds.
	struct tm guest_time() const;
	struct tm live_time(time_t host) const;
	void set_time_field(uint8_t index, uint8_t value);
	// Makes set_time_ the guest's time as of the given host second.
	void commit_time(time_t host);
	uint8_t encode(int value) const;
	int decode(uint8_t value) const;
	uint8_t encode_hour(int hour) const;
	int decode_hour(uint8_t value) const;

	Clock clock_;
	mutable std::mutex mutex_;
	uint8_t index_ = 0;
	// Plain bytes: the NVRAM and the alarm registers, indexed as the CMOS.
	std::array<uint8_t, 128> cmos_{};
	uint8_t register_a_;
	uint8_t register_b_;
	int64_t offset_seconds_ = 0;  // guest time minus host time
	// While register B's SET bit is on, the time stands still at set_time_
	// and time-register writes edit it; clearing SET commits it.
	struct tm set_time_ = {};
	// Host second of the last register C read, for the update-ended flag.
	time_t flags_read_second_;
};

}  // namespace kairos::devices
