// A Logger for tests that do not look at what is logged: stderr, at the
// default level, so a warning still shows in the test's output.
#pragma once

#include "base/logger.h"

inline const kairos::Logger &test_log()
{
	static const kairos::Logger log;
	return log;
}
