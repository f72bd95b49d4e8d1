#include "vmm/image_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace kairos::vmm {
namespace {

Status out_of_range(uint64_t offset, uint64_t length, uint64_t total)
{
	return make_error("bytes {}..{} are past the end of the image ({} bytes)", offset, offset + length, total);
}

}  // namespace

Status SpanImage::read_at(uint64_t offset, std::span<uint8_t> out) const
{
	if (!range_inside(offset, out.size(), bytes_.size()))
		return out_of_range(offset, out.size(), bytes_.size());
	std::memcpy(out.data(), bytes_.data() + offset, out.size());
	return {};
}

Result<FileImage> FileImage::open(const std::filesystem::path &path, const std::string &key)
{
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd)
		return make_error("{} {}: {}", key, path.string(), std::strerror(errno));
	struct stat info = {};
	if (fstat(fd.get(), &info) != 0)
		return make_error("{} {}: fstat: {}", key, path.string(), std::strerror(errno));
	if (!S_ISREG(info.st_mode))
		return make_error("{} {}: not a regular file", key, path.string());
	return FileImage(std::move(fd), static_cast<uint64_t>(info.st_size));
}

Status FileImage::read_at(uint64_t offset, std::span<uint8_t> out) const
{
	if (!range_inside(offset, out.size(), size_))
		return out_of_range(offset, out.size(), size_);
	size_t done = 0;
	while (done < out.size()) {
		ssize_t got = pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return make_error("pread at {}: {}", offset + done, std::strerror(errno));
		if (got == 0)
			return make_error("the file ended at {} of its {} bytes (it shrank while read)", offset + done,
					  size_);
		done += static_cast<size_t>(got);
	}
	return {};
}

}  // namespace kairos::vmm
