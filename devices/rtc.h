// Rtc: the MC146818 CMOS real-time clock and its 128 bytes of NVRAM
// (Motorola MC146818A datasheet), with its update-ended, alarm and periodic
// interrupts, enough for Linux's rtc-cmos driver and for hwclock.
//
// Register it on the I/O bus at the index port with length 2:
//	bus.add(layout::kPortRtc, layout::kRtcPortSize, rtc);
// and wire its IrqLine to ISA IRQ 8 (layout::kIrqRtc). Offset 0 (port 0x70)
// selects a register, offset 1 (port 0x71) reads or writes it.
//
// The time is computed from a host clock at each access. Guest writes to the
// time registers move an offset of whole seconds from the host clock, never
// the host clock itself, so "hwclock -w" then "hwclock -r" round-trips and
// the RTC's seconds start where the host's do.
//
// Interrupts. Register C's flags are computed lazily: each access first
// accounts for the update cycles, alarm matches and periodic ticks since the
// previous one. Only while the line is low and an enabled interrupt can
// come does the Rtc ask its DeviceTimer to wake it (timer_expired) at that
// interrupt's time; once IRQF holds the line high nothing more can reach
// the guest until it reads register C, so no timer runs. A guest therefore
// gets at most one host wake-up per read of register C, at most 8192 a
// second (the chip's fastest periodic rate), and none with interrupts off.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "devices/bus.h"
#include "devices/device_timer.h"
#include "devices/irq_line.h"

namespace kairos::devices {

// Threads: vCPU threads call read/write, the VMM's event loop calls
// timer_expired; one mutex guards all state. The IrqLine and the
// DeviceTimer are called with it held, so the line follows register C in
// the order of the accesses; neither may call back into this Rtc.
class Rtc : public BusDevice {
public:
	// The century register's CMOS index: not in the MC146818A, a PC
	// convention that ACPI's FADT CENTURY field points at.
	static constexpr uint8_t kCenturyIndex = 0x32;
	// The host time the guest's clock runs from; tests inject their own.
	using Clock = std::function<struct timespec()>;

	// An empty clock means CLOCK_REALTIME. The RTC keeps UTC, as Linux
	// expects on a machine that does not dual-boot Windows. Without an irq
	// the guest can only poll register C; without a timer, interrupts are
	// raised only when the guest next touches a register.
	explicit Rtc(Clock clock = {}, std::shared_ptr<IrqLine> irq = nullptr,
		     std::shared_ptr<DeviceTimer> timer = nullptr);

	std::string name() const override { return "rtc"; }
	void read(uint64_t offset, std::span<uint8_t> data) override;
	void write(uint64_t offset, std::span<const uint8_t> data) override;

	// The DeviceTimer's wake-up: raises the interrupts that fell due and
	// asks for the next wake-up, if any.
	void timer_expired();
	// Low-to-high transitions of the line so far (--stats).
	uint64_t interrupts_raised() const;

private:
	// All below require mutex_. `now` is the host clock in ns, read once
	// per access so that one access sees one instant.
	int64_t now_ns() const;
	uint8_t read_register(uint8_t index, int64_t now);
	void write_register(uint8_t index, uint8_t value, int64_t now);
	// Folds the update cycles, alarm matches and periodic ticks in
	// (events_until_, now] into flags_.
	void catch_up(int64_t now);
	// IRQF: the flags whose interrupt register B enables.
	uint8_t interrupt_request() const;
	void update_line();
	// Arms the timer for the next interrupt the guest could get, if any.
	void reschedule(int64_t now);
	std::optional<int64_t> next_interrupt(int64_t now) const;
	// The first guest second after `guest_second` whose time matches the
	// alarm registers, or nullopt if none ever does.
	std::optional<int64_t> next_alarm_after(int64_t guest_second) const;
	bool update_in_progress(int64_t now) const;
	// The guest's broken-down time: live, or as being set while SET holds.
	struct tm guest_time(int64_t now) const;
	struct tm live_time(time_t host_second) const;
	void set_time_field(uint8_t index, uint8_t value);
	// Makes set_time_ the guest's time as of the given host second.
	void commit_time(time_t host_second);
	uint8_t encode(int value) const;
	int decode(uint8_t value) const;
	uint8_t encode_hour(int hour) const;
	int decode_hour(uint8_t value) const;

	Clock clock_;
	std::shared_ptr<IrqLine> irq_;
	std::shared_ptr<DeviceTimer> timer_;
	mutable std::mutex mutex_;
	uint8_t index_ = 0;
	// Plain bytes: the NVRAM and the alarm registers, indexed as the CMOS.
	std::array<uint8_t, 128> cmos_{};
	uint8_t register_a_;
	uint8_t register_b_;
	// Register C's PF, AF and UF; IRQF is derived (interrupt_request).
	uint8_t flags_ = 0;
	bool line_high_ = false;
	uint64_t interrupts_raised_ = 0;
	// Host time (ns) up to which events are accounted in flags_.
	int64_t events_until_;
	// The host time the timer is armed for, so that an access that does
	// not move it costs no system call.
	std::optional<int64_t> armed_for_;
	int64_t offset_seconds_ = 0;  // guest time minus host time
	// While register B's SET bit is on, the time stands still at set_time_
	// and time-register writes edit it; clearing SET commits it.
	struct tm set_time_ = {};
};

}  // namespace kairos::devices
