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

Status check_console_file(const Config &config)
{
	if (config.console.output == Config::Console::Output::File)
		return check_writable_path(config.console.file, "console.output");
	return {};
}

}  // namespace

Status preflight(const Config &config)
{
	KAIROS_TRY(check_console_file(config));
	KAIROS_TRY(check_virtio_devices(config));
	return check_guest(config);
}

Result<PreparedRun> preflight_and_prepare(const Config &config)
{
	KAIROS_TRY(check_console_file(config));
	KAIROS_TRY_ASSIGN(drives, preflight_virtio_devices(config));
	KAIROS_TRY_ASSIGN(guest, prepare_guest(config));
	return PreparedRun{std::move(guest), std::move(drives)};
}

}  // namespace kairos::vmm
