// kairos ctl PATH COMMAND [PORT]: the client of a running VM's control
// socket (kairos run --api-sock PATH). Sends one request line, prints the
// reply, and exits 0 when the VMM answered ok, 1 when it answered an error
// or could not be reached, 2 for bad usage.
#pragma once

#include <string>
#include <vector>

namespace kairos::vmm {

// The words after "ctl". Prints on stdout and stderr itself.
int ctl_command(const std::vector<std::string> &args);

}  // namespace kairos::vmm
