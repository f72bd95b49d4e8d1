// DeviceTimer: how a device asks to be woken up later, for events that come
// from the passage of time rather than from a register access (the CMOS
// RTC's update, alarm and periodic interrupts). The VMM implements it with a
// timerfd its event loop watches, and calls the device back on expiry; tests
// implement it with a recorder and call the device themselves.
#pragma once

#include <chrono>
#include <optional>

namespace kairos::devices {

class DeviceTimer {
public:
	virtual ~DeviceTimer() = default;
	// One wake-up `delay` from now (> 0), replacing any earlier request;
	// nullopt cancels it. Called with the device's lock held, from any
	// thread: it must not call back into the device.
	virtual void arm(std::optional<std::chrono::nanoseconds> delay) = 0;
};

}  // namespace kairos::devices
