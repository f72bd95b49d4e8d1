#include "outsourcing/wakeup_limiter.h"

#include <algorithm>

namespace kairos::outsourcing {

WakeupLimiter::WakeupLimiter(uint64_t rate_hz, uint64_t burst)
	: period_ns_(1'000'000'000ULL / std::max<uint64_t>(rate_hz, 1)),
	  max_credit_ns_(period_ns_ * std::max<uint64_t>(burst, 1)), credit_ns_(max_credit_ns_)
{
}

uint64_t WakeupLimiter::credit_at(uint64_t now_ns) const
{
	// A clock that seems to go back (another thread's older reading) adds nothing.
	uint64_t earned = now_ns > last_ns_ ? now_ns - last_ns_ : 0;
	return std::min(max_credit_ns_, credit_ns_ + std::min(earned, max_credit_ns_));
}

bool WakeupLimiter::take(uint64_t now_ns)
{
	credit_ns_ = credit_at(now_ns);
	last_ns_ = std::max(last_ns_, now_ns);
	if (credit_ns_ < period_ns_)
		return false;
	credit_ns_ -= period_ns_;
	return true;
}

uint64_t WakeupLimiter::next_token_ns(uint64_t now_ns) const
{
	uint64_t credit = credit_at(now_ns);
	return credit >= period_ns_ ? now_ns : now_ns + (period_ns_ - credit);
}

}  // namespace kairos::outsourcing
