#include "base/pi_mutex.h"

#include <cstdlib>

namespace kairos {

PiMutex::PiMutex()
{
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	// Fails only where the C library has no PI futexes; the mutex then
	// works without inheritance, which is what std::mutex gives anyway.
	pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&mutex_, &attr);
	pthread_mutexattr_destroy(&attr);
}

PiMutex::~PiMutex()
{
	pthread_mutex_destroy(&mutex_);
}

void PiMutex::lock()
{
	// Errors (EDEADLK, EINVAL) are programming errors: fail loudly.
	if (pthread_mutex_lock(&mutex_) != 0)
		std::abort();
}

void PiMutex::unlock()
{
	pthread_mutex_unlock(&mutex_);
}

bool PiMutex::try_lock()
{
	return pthread_mutex_trylock(&mutex_) == 0;
}

}  // namespace kairos
