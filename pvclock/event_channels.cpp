#include "pvclock/event_channels.h"

namespace kairos::pvclock {

void EventChannels::attach(SharedInfo *page)
{
	std::lock_guard lock(mutex_);
	page_ = page;
	for (uint32_t port = 0; port < KAIROS_EVENT_PORTS; ++port) {
		if (held_.test(port) && page_->raise(port)) {
			++upcalls_;
			inject_();
		}
	}
	held_.reset();
}

void EventChannels::detach()
{
	std::lock_guard lock(mutex_);
	page_ = nullptr;
}

bool EventChannels::attached() const
{
	std::lock_guard lock(mutex_);
	return page_ != nullptr;
}

void EventChannels::raise(uint32_t port)
{
	std::lock_guard lock(mutex_);
	if (port >= KAIROS_EVENT_PORTS) {
		++invalid_ports_;
		return;
	}
	raise_locked(port);
}

void EventChannels::raise_locked(uint32_t port)
{
	EventStats &stats = stats_[port];
	++stats.raised;
	if (!page_) {
		held_.set(port);
		++stats.held;
		return;
	}
	if (page_->raise(port)) {
		++stats.injected;
		++upcalls_;
		inject_();
	}
}

EventStats EventChannels::stats(uint32_t port) const
{
	std::lock_guard lock(mutex_);
	return port < KAIROS_EVENT_PORTS ? stats_[port] : EventStats{};
}

uint64_t EventChannels::upcalls() const
{
	std::lock_guard lock(mutex_);
	return upcalls_;
}

uint64_t EventChannels::invalid_ports() const
{
	std::lock_guard lock(mutex_);
	return invalid_ports_;
}

}  // namespace kairos::pvclock
