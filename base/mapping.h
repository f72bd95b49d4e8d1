// Mapping: an owned mmap() region, unmapped on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/result.h"

namespace kairos {

class Mapping {
public:
	Mapping() = default;
	~Mapping() { reset(); }
	Mapping(Mapping &&other) noexcept
		: address_(std::exchange(other.address_, nullptr)), size_(std::exchange(other.size_, 0))
	{
	}
	Mapping &operator=(Mapping &&other) noexcept
	{
		if (this != &other) {
			reset();
			address_ = std::exchange(other.address_, nullptr);
			size_ = std::exchange(other.size_, 0);
		}
		return *this;
	}
	Mapping(const Mapping &) = delete;
	Mapping &operator=(const Mapping &) = delete;

	// Private anonymous memory, zero-filled, e.g. guest RAM: starts on a
	// 2 MiB boundary and is advised MADV_HUGEPAGE. KVM maps a guest's
	// 2 MiB page with one huge page only when its guest-physical and
	// host-virtual addresses agree modulo 2 MiB (QEMU, Firecracker and
	// crosvm align guest RAM so too); with 4 KiB host pages the TLB holds
	// guest memory in 4 KiB pieces and each miss walks one nested level
	// more. Errors: mmap's, naming purpose.
	static Result<Mapping> anonymous(size_t size, const char *purpose);
	static constexpr size_t kHugePageBytes = size_t{2} << 20;
	// A shared mapping of an fd, e.g. a vCPU's kvm_run area.
	static Result<Mapping> of_fd(int fd, size_t size, const char *purpose);

	uint8_t *data() const { return static_cast<uint8_t *>(address_); }
	size_t size() const { return size_; }

private:
	Mapping(void *address, size_t size) : address_(address), size_(size) {}
	void reset();

	void *address_ = nullptr;
	size_t size_ = 0;
};

}  // namespace kairos
