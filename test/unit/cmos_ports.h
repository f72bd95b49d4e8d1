// The CMOS RTC as the guest reaches it: the register index written to the
// index port (0x70, offset 0), then the register read or written through
// the data port (0x71, offset 1). Shared by the RTC's unit tests.
#pragma once

#include <cstdint>

#include "devices/rtc.h"

namespace kairos::test {

inline uint8_t cmos_read(devices::Rtc &rtc, uint8_t index)
{
	rtc.write(0, {&index, 1});
	uint8_t value = 0;
	rtc.read(1, {&value, 1});
	return value;
}

inline void cmos_write(devices::Rtc &rtc, uint8_t index, uint8_t value)
{
	rtc.write(0, {&index, 1});
	rtc.write(1, {&value, 1});
}

}  // namespace kairos::test
