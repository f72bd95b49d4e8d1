#include "vmm/preflight.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/error.h"
#include "vmm/virtio_devices.h"

namespace kairos::vmm {

Status check_writable_path(const std::filesystem::path &path, const std::string &what)
{
	std::error_code error;
	if (std::filesystem::is_directory(path, error))
		return make_error("{} {}: is a directory", what, path.string());
	if (std::filesystem::exists(path, error)) {
		if (access(path.c_str(), W_OK) != 0)
			return make_error("{} {}: {}", what, path.string(), std::strerror(errno));
		return {};
	}
	std::filesystem::path directory = path.parent_path().empty() ? "." : path.parent_path();
	if (!std::filesystem::is_directory(directory, error))
		return make_error("{} {}: the directory {} does not exist", what, path.string(), directory.string());
	if (access(directory.c_str(), W_OK | X_OK) != 0)
		return make_error("{} {}: cannot create it in {}: {}", what, path.string(), directory.string(),
				  std::strerror(errno));
	return {};
}

Status check_events_path(const std::filesystem::path &path)
{
	KAIROS_TRY(check_writable_path(path, "--events"));
	std::error_code error;
	auto status = std::filesystem::status(path, error);
	if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
		return make_error("--events {}: not a regular file (a FIFO or terminal could stall the VMM)",
				  path.string());
	return {};
}

namespace {

// The files the VM will open besides the guest image: the console's
// output file and the drives' images (opened, locked and let go).
Status check_vm_files(const Config &config)
{
	if (config.console.output == Config::Console::Output::File)
		KAIROS_TRY(check_writable_path(config.console.file, "console.output"));
	return check_virtio_devices(config);
}

}  // namespace

Status preflight(const Config &config)
{
	KAIROS_TRY(check_vm_files(config));
	return check_guest(config);
}

Result<PreparedGuest> preflight_and_prepare(const Config &config)
{
	KAIROS_TRY(check_vm_files(config));
	return prepare_guest(config);
}

}  // namespace kairos::vmm
