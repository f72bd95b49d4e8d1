// PiMutex: a mutex with priority inheritance (PTHREAD_PRIO_INHERIT), for
// locks that a real-time thread (the timer thread, outsourcing.priority
// fifo:N) shares with normal ones. With a plain mutex, a normal thread
// preempted by host load while it holds the lock blocks the real-time
// thread for as long as the load keeps it off the CPU (priority inversion);
// with inheritance the holder runs at the waiter's priority until it
// unlocks. Satisfies Lockable, so std::lock_guard works with it.
#pragma once

#include <pthread.h>

namespace kairos {

class PiMutex {
public:
	PiMutex();
	~PiMutex();
	PiMutex(const PiMutex &) = delete;
	PiMutex &operator=(const PiMutex &) = delete;

	void lock();
	void unlock();
	bool try_lock();

private:
	pthread_mutex_t mutex_;
};

}  // namespace kairos
