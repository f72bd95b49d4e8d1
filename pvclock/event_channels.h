// EventChannels: the host side of Xen-style event channels (DESIGN.md 3).
// Raising a port sets its pending bit in the shared-info page and, when the
// guest has not masked it, injects the upcall interrupt. Events raised
// before the guest registered its page are held and replayed at
// registration: nothing is lost.
#pragma once

#include <array>
#include <bitset>
#include <functional>
#include <mutex>

#include "base/pi_mutex.h"

#include "pvclock/shared_info.h"

namespace kairos::pvclock {

struct EventStats {
	uint64_t raised = 0;    // raise() calls for this port
	uint64_t injected = 0;  // of which sent an upcall interrupt at once
	uint64_t held = 0;      // of which arrived before the page was registered
};

class EventChannels {
public:
	// inject: send the upcall interrupt (KVM_IRQ_LINE from the calling thread, in the VMM).
	explicit EventChannels(std::function<void()> inject) : inject_(std::move(inject)) {}

	// The page is registered; replays held events into it.
	void attach(SharedInfo *page);
	void detach();
	bool attached() const;

	// Thread-safe. Ports >= KAIROS_EVENT_PORTS are ignored (and counted).
	void raise(uint32_t port);

	EventStats stats(uint32_t port) const;
	uint64_t upcalls() const;
	uint64_t invalid_ports() const;

private:
	void raise_locked(uint32_t port);

	std::function<void()> inject_;
	// Shared with the (possibly real-time) timer thread: see PiMutex.
	mutable PiMutex mutex_;
	SharedInfo *page_ = nullptr;
	std::bitset<KAIROS_EVENT_PORTS> held_;
	std::array<EventStats, KAIROS_EVENT_PORTS> stats_{};
	uint64_t upcalls_ = 0;
	uint64_t invalid_ports_ = 0;
};

}  // namespace kairos::pvclock
