// RunGate: whether the vCPUs may enter KVM_RUN (kairos ctl pause/resume).
// The main loop closes and opens it; each vCPU thread passes it before
// every KVM_RUN and waits at it while it is closed. Closing it does not
// stop a vCPU already in the guest: the caller kicks them (Vcpu::kick).
//
// A vCPU waiting here must still see a stop: Vcpu::kick calls wake(), and
// the waiter looks at the Shutdown each time it wakes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "vmm/shutdown.h"

namespace kairos::vmm {

class RunGate {
public:
	// Main thread. Each returns false when the gate already was so.
	bool close();
	bool open();
	bool closed() const;

	// vCPU thread: returns at once while open; else waits until it opens
	// or a stop is requested. Returns whether it waited.
	bool pass(const Shutdown &shutdown);
	// After a stop request: every waiter looks again.
	void wake();
	// vCPU threads waiting now (kairos ctl status).
	uint32_t waiting() const;

private:
	mutable std::mutex mutex_;
	std::condition_variable changed_;
	bool closed_ = false;
	uint32_t waiting_ = 0;
};

}  // namespace kairos::vmm
