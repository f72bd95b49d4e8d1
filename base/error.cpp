#include "base/error.h"

#include <cerrno>
#include <cstring>

namespace kairos {

Error errno_error(const std::string &what, int saved_errno)
{
	return Error{what + ": " + std::strerror(saved_errno)};
}

Error errno_error(const std::string &what)
{
	return errno_error(what, errno);
}

}  // namespace kairos
