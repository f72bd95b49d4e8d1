// Preflight: what `kairos check` and the start of `kairos run` can find
// wrong without KVM, so that a config error is reported as one (exit 2)
// before anything runs, and `check` saying ok means `run` will not refuse
// the config later (issue 11).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "devices/virtio/block.h"
#include "vmm/config.h"
#include "vmm/guest_loader.h"

namespace kairos::vmm {

// Whether a file can be written at path: it is writable if it exists, or
// its directory exists and is writable. Errors start with `what` (the
// config key or option) and the path.
Status check_writable_path(const std::filesystem::path &path, const std::string &what);

// --events: writable, and if it exists a regular file. The main loop
// writes it as events come, which a FIFO or terminal could make wait.
Status check_events_path(const std::filesystem::path &path);

// The guest image and command line (check_guest), the console output
// file and the drives' images (opened and locked as the run will, then
// let go: check_virtio_devices). Errors name the key.
Status preflight(const Config &config);

// What `kairos run` takes from its preflight to the machine.
struct PreparedRun {
	PreparedGuest guest;
	// config.drives's images, open and locked (preflight_virtio_devices).
	std::vector<devices::virtio::BlockImage> drives;
};

// What `kairos run` checks: the same as preflight, but the guest is loaded
// into the memory it will run in rather than a throwaway one, and the
// drives' images stay open and locked for the machine.
Result<PreparedRun> preflight_and_prepare(const Config &config);

}  // namespace kairos::vmm
