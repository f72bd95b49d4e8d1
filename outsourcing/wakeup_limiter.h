// WakeupLimiter: a token bucket for the timer thread's guest-driven
// wake-ups (the doorbell, ack and done ports; issue 12, #5). A guest
// writing those ports in a loop would otherwise make the thread run a pass
// per write, and with outsourcing.priority "fifo:N" that is a host CPU at
// real-time priority driven by guest input. With the limit, such a guest
// gets at most rate_hz passes per second plus a burst; nothing is lost:
// requests wait in the ring, and the eventfds count the writes, so the
// read submitted when a token is back completes at once.
#pragma once

#include <cstdint>

namespace kairos::outsourcing {

// Enough for a guest arming timers as fast as it can (each pass drains up
// to 16 ring-fulls) and for a window's done report per expiry at kHz
// rates, while a guest writing the ports in a loop costs the host a
// bounded share of a CPU: a pass woken from sleep cost about 28 us here
// (unit test, 1000 Hz: 333 passes, 9.3 ms of CPU in 0.3 s), so about 14%
// of a CPU at this rate, against 83% with no limit.
inline constexpr uint64_t kDefaultGuestWakeupsHz = 5'000;
// Wake-ups at once after a quiet spell.
inline constexpr uint64_t kGuestWakeupBurst = 32;

class WakeupLimiter {
public:
	// rate_hz > 0 wake-ups per second on average, at most burst at once.
	WakeupLimiter(uint64_t rate_hz, uint64_t burst);

	// Takes a token at now_ns (CLOCK_MONOTONIC); false when none is left.
	bool take(uint64_t now_ns);
	// When the next token is there (now_ns if it already is).
	uint64_t next_token_ns(uint64_t now_ns) const;

private:
	uint64_t credit_at(uint64_t now_ns) const;

	uint64_t period_ns_;      // one token's worth of time
	uint64_t max_credit_ns_;  // burst tokens
	uint64_t credit_ns_;
	uint64_t last_ns_ = 0;
};

}  // namespace kairos::outsourcing
