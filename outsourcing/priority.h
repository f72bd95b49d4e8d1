// The timer thread's scheduling priority (config outsourcing.priority).
// DESIGN.md 1: the timer thread is the only one that may run raised, since
// only timer handling needs it.
#pragma once

#include <string>

#include "base/result.h"

namespace kairos::outsourcing {

struct Priority {
	enum class Policy { Normal, Nice, Fifo };
	Policy policy = Policy::Normal;
	// Nice: the nice value, -20..-1. Fifo: the SCHED_FIFO priority, 1..99.
	int value = 0;

	bool operator==(const Priority &) const = default;
};

// "normal", "nice:-N" (N 1..20) or "fifo:N" (N 1..99).
Result<Priority> parse_priority(const std::string &text);
// The config spelling, e.g. "fifo:50".
std::string to_string(const Priority &priority);

// Applies `priority` to the calling thread only (Linux: a TID names one
// thread for setpriority and sched_setscheduler). Fails with the errno
// text, e.g. when the process may not raise its priority (EPERM, EACCES).
Status apply_priority_to_this_thread(const Priority &priority);

}  // namespace kairos::outsourcing
