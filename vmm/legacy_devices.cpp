#include "vmm/legacy_devices.h"

#include <algorithm>
#include <atomic>

#include <fmt/core.h>

#include "base/clock.h"
#include "base/timer_fd.h"
#include "devices/acpi_pm.h"
#include "devices/device_timer.h"
#include "devices/i8042.h"
#include "vmm/layout.h"

namespace kairos::vmm {

// The RTC's wake-ups: a CLOCK_MONOTONIC timerfd, armed from whichever thread
// touched the RTC (a vCPU's port access, or the loop after an expiry), and
// read by the event loop, which then calls Rtc::timer_expired. The RTC
// counts in its own clock (CLOCK_REALTIME) and asks for a delay, so no clock
// is converted here; if the host's wall clock steps meanwhile, the RTC sees
// at the wake-up that its event is not due and asks again.
class RtcTimer : public devices::DeviceTimer {
public:
	explicit RtcTimer(TimerFd timer) : timer_(std::move(timer)) {}

	void arm(std::optional<std::chrono::nanoseconds> delay) override
	{
		std::optional<uint64_t> deadline;
		if (delay)
			deadline = monotonic_now_ns() + static_cast<uint64_t>(std::max<int64_t>(delay->count(), 1));
		auto status = timer_.arm_at(deadline);
		// As with KvmIrqLine: the guest may still run (its driver reads
		// register C on other paths), so this is no reason to stop, but
		// an RTC that went quiet is reported once.
		if (!status && !reported_.exchange(true))
			fmt::print(stderr, "kairos: the CMOS RTC's interrupts may stop: {}\n", status.error().message);
	}
	int fd() const { return timer_.fd(); }
	bool expired() const { return timer_.consume() > 0; }

private:
	TimerFd timer_;
	std::atomic<bool> reported_{false};
};

namespace {

// Port 0x80: Linux writes it to delay I/O. Claim it so it is not counted
// as an unclaimed access.
class PostCodePort : public devices::BusDevice {
public:
	std::string name() const override { return "POST code port"; }
	void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
	void write(uint64_t, std::span<const uint8_t>) override {}
};

}  // namespace

Result<LegacyDevices> LegacyDevices::attach(devices::Bus &pio_bus, const IrqLineFor &irq_line_for,
					    devices::Serial::OutputCallback console_output, LegacyEvents events)
{
	auto serial = std::make_shared<devices::Serial>(irq_line_for(layout::kIrqCom1), std::move(console_output));
	KAIROS_TRY(pio_bus.add(layout::kPortCom1, layout::kComPortSize, serial));

	// reboot=k resets through the keyboard controller, reboot=a (or the
	// BIOS reset vector) through the ACPI reset register.
	auto reset = events.reset;
	auto i8042 = std::make_shared<devices::I8042>([reset] { reset("the i8042"); });
	KAIROS_TRY(pio_bus.add(layout::kPortI8042Data, 1, i8042->data_port()));
	KAIROS_TRY(pio_bus.add(layout::kPortI8042Command, 1, i8042->command_port()));

	KAIROS_TRY_ASSIGN(timer_fd, TimerFd::create(TimerFd::Mode::NonBlocking, "the CMOS RTC's interrupts"));
	auto rtc_timer = std::make_shared<RtcTimer>(std::move(timer_fd));
	auto rtc = std::make_shared<devices::Rtc>(devices::Rtc::Clock{}, irq_line_for(layout::kIrqRtc), rtc_timer);
	KAIROS_TRY(pio_bus.add(layout::kPortRtc, layout::kRtcPortSize, rtc));
	auto acpi_pm =
		std::make_shared<devices::AcpiPm>(events.power_off, [reset] { reset("the ACPI reset register"); });
	KAIROS_TRY(pio_bus.add(layout::kPortAcpiSleepControl, devices::AcpiPm::kPortCount, acpi_pm));
	KAIROS_TRY(pio_bus.add(layout::kPortPostCode, 1, std::make_shared<PostCodePort>()));
	return LegacyDevices(std::move(serial), std::move(rtc), std::move(rtc_timer));
}

LegacyDevices::LegacyDevices(std::shared_ptr<devices::Serial> serial, std::shared_ptr<devices::Rtc> rtc,
			     std::shared_ptr<RtcTimer> rtc_timer)
	: serial_(std::move(serial)), rtc_(std::move(rtc)), rtc_timer_(std::move(rtc_timer))
{
}

Status LegacyDevices::watch(EventLoop &loop)
{
	// The handler holds the RTC and its timer, so they outlive the watch.
	return loop.watch(rtc_timer_->fd(), [rtc = rtc_, timer = rtc_timer_] {
		if (timer->expired())
			rtc->timer_expired();
	});
}

}  // namespace kairos::vmm
