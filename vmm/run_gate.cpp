#include "vmm/run_gate.h"

namespace kairos::vmm {

bool RunGate::close()
{
	std::lock_guard lock(mutex_);
	if (closed_)
		return false;
	closed_ = true;
	return true;
}

bool RunGate::open()
{
	{
		std::lock_guard lock(mutex_);
		if (!closed_)
			return false;
		closed_ = false;
	}
	changed_.notify_all();
	return true;
}

bool RunGate::closed() const
{
	std::lock_guard lock(mutex_);
	return closed_;
}

bool RunGate::pass(const Shutdown &shutdown)
{
	std::unique_lock lock(mutex_);
	if (!closed_)
		return false;
	++waiting_;
	// Shutdown::request is seen because Vcpu::kick calls wake() after it.
	changed_.wait(lock, [&] { return !closed_ || shutdown.requested(); });
	--waiting_;
	return true;
}

void RunGate::wake()
{
	// Under the lock: a waiter between its check and its wait cannot
	// miss this.
	std::lock_guard lock(mutex_);
	changed_.notify_all();
}

uint32_t RunGate::waiting() const
{
	std::lock_guard lock(mutex_);
	return waiting_;
}

}  // namespace kairos::vmm
