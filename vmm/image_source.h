// Where a guest image is read from: a buffer (tests, fuzzing) or a file,
// read in parts with pread. A PVH vmlinux is 60+ MiB: `kairos run` reads
// its segments straight into guest memory instead of into a buffer first
// and then copying them (1.1-1.4 s against 0.4-0.6 s in the emulated
// machine, issue 11).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace kairos::vmm {

// [offset, offset + length) inside a buffer or file of `total` bytes,
// without overflowing on hostile values (an image's headers are input).
inline bool range_inside(uint64_t offset, uint64_t length, uint64_t total)
{
	return offset <= total && length <= total - offset;
}

class ImageSource {
public:
	virtual ~ImageSource() = default;
	// Bytes in the image, fixed when it was opened.
	virtual uint64_t size() const = 0;
	// Copies [offset, offset + out.size()) into out. Errors: the range is
	// not inside size(), or the file gave fewer bytes (it shrank).
	virtual Status read_at(uint64_t offset, std::span<uint8_t> out) const = 0;
};

class SpanImage : public ImageSource {
public:
	explicit SpanImage(std::span<const uint8_t> bytes) : bytes_(bytes) {}
	uint64_t size() const override { return bytes_.size(); }
	Status read_at(uint64_t offset, std::span<uint8_t> out) const override;

private:
	std::span<const uint8_t> bytes_;
};

class FileImage : public ImageSource {
public:
	// Opens path read-only; its size is taken now. Errors start with
	// `key` and the path (missing, a directory, unreadable).
	static Result<FileImage> open(const std::filesystem::path &path, const std::string &key);
	uint64_t size() const override { return size_; }
	Status read_at(uint64_t offset, std::span<uint8_t> out) const override;

private:
	FileImage(UniqueFd fd, uint64_t size) : fd_(std::move(fd)), size_(size) {}
	UniqueFd fd_;
	uint64_t size_;
};

}  // namespace kairos::vmm
