// The rate limit on guest-driven wake-ups of the timer thread (issue 12, #5).
#include <catch2/catch.hpp>

#include "outsourcing/wakeup_limiter.h"

using kairos::outsourcing::WakeupLimiter;

TEST_CASE("wakeup limiter: a burst at once, then one token per period", "[outsourcing][limiter]")
{
	WakeupLimiter limiter(1000, 4);  // a token per 1 ms, 4 banked
	uint64_t t = 5'000'000'000;
	int granted = 0;
	while (limiter.take(t))
		++granted;
	CHECK(granted == 4);
	CHECK(limiter.next_token_ns(t) == t + 1'000'000);
	CHECK_FALSE(limiter.take(t + 999'999));
	CHECK(limiter.take(t + 1'000'000));
	CHECK_FALSE(limiter.take(t + 1'000'000));
}

TEST_CASE("wakeup limiter: over a long storm the rate holds, and a quiet spell banks only the burst",
	  "[outsourcing][limiter]")
{
	WakeupLimiter limiter(10'000, 32);
	uint64_t t = 1'000'000;
	uint64_t granted = 0;
	// One second of a guest asking every microsecond.
	for (uint64_t i = 0; i < 1'000'000; ++i, t += 1'000)
		granted += limiter.take(t) ? 1 : 0;
	CHECK(granted <= 10'000 + 32);
	CHECK(granted >= 10'000 - 1);
	// An hour of silence earns no more than the burst.
	t += 3600ULL * 1'000'000'000;
	granted = 0;
	while (limiter.take(t))
		++granted;
	CHECK(granted == 32);
	// A clock read that seems older earns nothing and breaks nothing.
	CHECK_FALSE(limiter.take(t - 1'000'000));
}
