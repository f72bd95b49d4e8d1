// Building Error values with context.
#pragma once

#include "base/result.h"

#include <fmt/format.h>

namespace kairos {

// "what: strerror(errno)" for a failed system call; call right after it.
Error errno_error(const std::string &what);
Error errno_error(const std::string &what, int saved_errno);

template <typename... Args>
Error make_error(fmt::format_string<Args...> format, Args &&...args)
{
	return Error{fmt::format(format, std::forward<Args>(args)...)};
}

}  // namespace kairos
